r"""Evaluates a trained model on held-out clips beside baselines: prints a table, writes a JSON.

Usage:
  wave_music_vae_evaluate --examples_path=/data/music            # the shipped checkpoint
  wave_music_vae_evaluate --run_dir=runs/soundtracks --examples_path=/data/music \
      --max_clips=64 --output_json=eval.json --refine_steps=100
  wave_music_vae_evaluate --config=gtzan --checkpoint_file=runs/gtzan/train/ckpt-2000 \
      --examples_path=/data/gtzan
  wave_music_vae_evaluate --saved_model=exports/soundtracks --examples_path=/data/music

Held-out clips are the eval split of `--examples_path` (whole files, chosen by the
config's split_method and eval_fraction, as in training: with split_method=official, GTZAN's
or FMA's test split); the PCA baseline and the probes are fitted
on clips of its train split. A folder whose eval split is empty is evaluated on its
train files instead, with a note. Every figure is defined in docs/metrics.md.
"""

import json
import sys
import time
from pathlib import Path

from absl import app
from absl import flags
import keras

from wave_music_vae import checkpoints
from wave_music_vae import config as config_lib
from wave_music_vae import data
from wave_music_vae import evaluation
from wave_music_vae import inference
from wave_music_vae import output_locations
from wave_music_vae import paths
from wave_music_vae import refinement
from wave_music_vae.cli import common

FLAGS = flags.FLAGS

flags.DEFINE_string("config", None, "Name of a config in configs/ (or a JSON file path); it must "
                    "match the checkpoint's. Default: the checkpoint's own config. Valid names: "
                    + ", ".join(config_lib.available_configs()))
flags.DEFINE_string("checkpoint_file", None, "Shipped checkpoint folder, run directory or "
                    "ckpt-N prefix. Default (with no --run_dir or --saved_model): the shipped "
                    "checkpoint.")
flags.DEFINE_string("run_dir", None, "Training run directory: evaluates its newest checkpoint.")
flags.DEFINE_string("saved_model", None, "Folder of a SavedModel from wave_music_vae_export.")
flags.DEFINE_string("examples_path", None, "Folder of songs, or TFRecord pattern (PREFIX*).")
flags.DEFINE_string("output_json", None, "Write every figure to this JSON file (its folder is "
                    "made if missing).")
flags.DEFINE_bool("overwrite", False, "Replace --output_json if it exists.")
flags.DEFINE_integer("max_clips", 64, "Held-out clips evaluated, spread over the held-out files.")
flags.DEFINE_integer("max_train_clips", 512, "Training-split clips for the PCA baseline, the "
                     "floor's mean mel and the probes.")
flags.DEFINE_integer("refine_steps", 0, "Also score reconstructions from mu refined by this "
                     "many gradient steps on the decoder's error (an extra row; 0: none).")
flags.DEFINE_bool("progress", True, "Show a progress bar.")
flags.DEFINE_bool("verbose", False, "Show tracebacks and TensorFlow's own logging.")


def _check_flags() -> None:
  given = [f"--{name}" for name in ("checkpoint_file", "run_dir", "saved_model")
           if FLAGS[name].value]
  if len(given) > 1:
    raise common.UsageError(f"give at most one of {', '.join(given)}")
  if not FLAGS.examples_path:
    raise common.UsageError("--examples_path is required")
  if not 0 <= FLAGS.refine_steps <= refinement.MAX_STEPS:
    raise common.UsageError(f"--refine_steps must be in [0, {refinement.MAX_STEPS}]")
  for name in ("max_clips", "max_train_clips"):
    if FLAGS[name].value < 2:
      raise common.UsageError(f"--{name}={FLAGS[name].value}: need at least 2 clips")
  if FLAGS.output_json:
    output = Path(FLAGS.output_json)
    if output.suffix.lower() != ".json":  # Never over a song of --examples_path.
      raise common.UsageError(f"--output_json={output}: the name must end in .json")
    output_locations.check_file(output)  # Before the evaluation, not after it.
    if (output.name in ("config.json", checkpoints.ATTRIBUTES_FILE, checkpoints.METADATA_FILE)
        and (output.parent / "config.json").is_file()):
      raise common.UsageError(f"--output_json={output}: one of a model folder's own files "
                              "(never overwritten, even with --overwrite)")
    if output.exists() and not FLAGS.overwrite:
      raise common.UsageError(f"--output_json={output} exists; pass --overwrite to replace it")


def _write_json(results: dict, path: Path, overwrite: bool) -> None:
  """Writes atomically: a temp file beside `path`, then a rename; makes its folder.

  `path` was checked at the start, but the evaluation takes minutes: without `overwrite`,
  a file made there meanwhile (another evaluation's) is not replaced either.
  """
  text = json.dumps(results, indent=2, allow_nan=False, ensure_ascii=False)
  tmp = paths.temporary_beside(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  try:
    tmp.write_text(text, encoding="utf-8", errors="backslashreplace")
    paths.move_into_place(tmp, path, overwrite)
  except FileExistsError:
    raise evaluation.EvaluationError(
        f"--output_json={path} appeared during the evaluation and was not replaced; the "
        "figures are in the table above (pass --overwrite to replace it)") from None
  finally:
    tmp.unlink(missing_ok=True)


def main(argv):
  if len(argv) > 1:
    raise common.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  _check_flags()
  expected = config_lib.load_config(FLAGS.config) if FLAGS.config else None
  backend = inference.load_backend(FLAGS.checkpoint_file, FLAGS.run_dir, FLAGS.saved_model,
                                   expected)
  config = backend.config
  source = data.DatasetSource(FLAGS.examples_path, config.data_layout)
  started = time.time()
  held_out = evaluation.held_out_clips(source, config, FLAGS.max_clips)
  train = evaluation.load_clips(source, config, "train", FLAGS.max_train_clips)
  print(f"evaluating {backend.source} (config {config.name}, z of {config.z_size}) on "
        f"{len(held_out)} clips of {FLAGS.examples_path}")
  if not held_out.split.startswith("eval"):
    print(f"note: {FLAGS.examples_path} has no eval files at {data.split_setting(config)}; "
          "the figures below are measured on training files")
  bar = keras.utils.Progbar(None, unit_name="clip", verbose=1 if FLAGS.progress else 0)

  def progress(done, total):
    bar.target = total
    bar.update(done)

  results = evaluation.evaluate(backend, held_out, train, progress=progress,
                                refine_steps=FLAGS.refine_steps)
  results["model"] = {"source": backend.source, "config": config.name, "z_size": config.z_size}
  results["data"]["examples_path"] = FLAGS.examples_path
  results["data"]["skipped_files"] = len(source.skipped)
  results["seconds"] = time.time() - started
  print()
  print(evaluation.format_table(results))
  print(f"\nevaluated in {results['seconds']:.1f} s; {source.skipped.summary()}")
  if FLAGS.output_json:
    _write_json(results, Path(FLAGS.output_json), FLAGS.overwrite)
    print(f"wrote {FLAGS.output_json}")
  return 0


def run(argv):
  return common.run_safely("wave_music_vae_evaluate", main, argv)


def console_entry_point():
  common.show_in_help(__name__)
  app.run(lambda argv: sys.exit(run(argv)))


if __name__ == "__main__":
  console_entry_point()
