r"""Trains a WaveMusicVAE, or evaluates its newest checkpoint (flags as music_vae_train).

Usage:
  wave_music_vae_train --config=gtzan --run_dir=runs/gtzan \
      --examples_path=/data/gtzan [--num_steps=200000] [--hparams=batch_size=8]
  wave_music_vae_train --config=gtzan --run_dir=runs/gtzan --examples_path=... --mode=eval
  wave_music_vae_train --config=folder --examples_path='/data/clips.tfrecord*' ...
  wave_music_vae_train --config=soundtracks --run_dir=runs/mine --examples_path=~/my_songs \
      --warm_start_from=checkpoints/soundtracks     # fine-tune the shipped model

`--examples_path` is a folder of songs read with the config's `data_layout` (gtzan,
fma or folder), or a TFRecord file pattern. Rerunning the same command resumes
from the newest checkpoint in `run_dir` at its exact step. `--warm_start_from`
starts a new run from a trained model's weights and step (a shipped folder, a run
directory or a ckpt-N prefix; same architecture, other training settings allowed);
once the run has a checkpoint of its own, reruns resume from that instead.
"""

import sys

from absl import app
from absl import flags

from wave_music_vae import checkpoints
from wave_music_vae import data
from wave_music_vae import output_locations
from wave_music_vae import training
from wave_music_vae.cli import common

FLAGS = flags.FLAGS

common.define_config_flags()
flags.DEFINE_string("run_dir", None, "Folder for checkpoints, summaries and config.json.")
flags.DEFINE_string("examples_path", None, "Folder of songs, or TFRecord pattern (PREFIX*).")
flags.DEFINE_integer("num_steps", 200000, "Train until the step counter reaches this.",
                     lower_bound=0)
flags.DEFINE_enum("mode", "train", ["train", "eval"], "Train, or evaluate the newest checkpoint.")
flags.DEFINE_integer("eval_num_batches", 50, "Batches in the eval pass (0: the whole split).",
                     lower_bound=0)
flags.DEFINE_bool("mixed_precision", False, "Compute in float16 on a GPU (mixed_float16).")
flags.DEFINE_string("tpu", "", "TPU name or address: train with TPUStrategy.")
flags.DEFINE_bool("cache_decoded_audio", False,
                  "Keep decoded songs in memory after their first read (small datasets; "
                  "a file over 10 minutes is kept window by window, as training reads "
                  "them).")
flags.DEFINE_string("warm_start_from", None,
                    "Start a new run from this trained model's weights and step: a shipped "
                    "checkpoint folder, a run directory or a ckpt-N prefix.")
flags.DEFINE_bool("progress", True, "Show a progress bar.")


def _eval_dataset(source, config):
  """The eval split; a folder whose eval split is empty falls back to train files' fixed crops."""
  try:
    return source.dataset(config, "eval"), "eval"
  except data.DataError:
    if source.is_tfrecord:
      raise
    files = data.label_interleaved(source.files("train", config))
    return data.folder_dataset(files, config, "eval", source.skipped), "train (fixed crops)"


def main(argv):
  if len(argv) > 1:
    raise common.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  for name in ("run_dir", "examples_path"):
    if not FLAGS[name].value:
      raise common.UsageError(f"--{name} is required")
  if FLAGS.mode == "eval" and FLAGS.warm_start_from:
    raise common.UsageError("--warm_start_from starts a training run; --mode=eval evaluates "
                            "the run directory's own newest checkpoint")
  output_locations.check_folder(FLAGS.run_dir)
  config = common.load_config()
  training.seed_run(config)  # A resumed run is seeded again once its step is known.
  source = data.DatasetSource(FLAGS.examples_path, config.data_layout)
  strategy = training.choose_strategy(FLAGS.tpu)
  training.check_batch_size(config, strategy)
  if FLAGS.mode == "train":
    # The data is checked before the run directory is made, so that a bad
    # --examples_path leaves no run directory behind.
    if not source.is_tfrecord:
      files = source.files("train", config)
      if not files:
        held_out = len(source.files("eval", config))
        hint = ("lower --hparams=eval_fraction or add songs" if config.split_method == "hash"
                else "add the dataset's training songs, or --hparams=split_method=hash")
        raise data.DataError(f"{source.examples_path}: the train split is empty at "
                             f"{data.split_setting(config)} (all {held_out} file(s) are held "
                             f"out for eval); {hint}")
      readable = data.first_readable(files, config.sample_rate_hz, source.skipped)
      print(f"{source.examples_path}: {len(files)} training file(s); first readable: {readable}")
    else:
      first = data.tfrecord_dataset(source.examples_path, config, "train", batch_size=1,
                                    repeat=False, as_eval=True).take(1)
      if not list(first):
        raise data.DataError(f"{source.examples_path}: the TFRecords hold no train-split clip "
                             "(prepared with every song held out?)")
      print(f"{source.examples_path}: TFRecords, whose train/eval split and clips were made by "
            "wave_music_vae_prepare_tfrecord (the config's clips_per_file and "
            "edge_crop_fraction do not apply; its eval_fraction is theirs)")
  trainer = training.Trainer(config, FLAGS.run_dir, strategy, FLAGS.mixed_precision)
  if FLAGS.mode == "eval" and not trainer.latest_checkpoint():
    raise common.UsageError(f"{FLAGS.run_dir}: no checkpoint to evaluate (train there first)")
  warm_start = FLAGS.warm_start_from if FLAGS.mode == "train" else None
  if warm_start and trainer.latest_checkpoint():
    print(f"{FLAGS.run_dir} has a checkpoint of its own: resuming it, not warm-starting")
  elif warm_start:  # Before the run directory is made, so a mismatch leaves nothing behind.
    loaded = checkpoints.load(checkpoint_file=warm_start)
    source_steps = loaded.steps or 0  # A shipped folder's metadata.json may not say.
    if FLAGS.num_steps <= source_steps:
      raise common.UsageError(
          f"--num_steps={FLAGS.num_steps} is not above step {source_steps:,} of {loaded.source}, "
          f"where the warm start begins; --num_steps is the step to train until (e.g. "
          f"--num_steps={source_steps + 12000})")
    trainer.warm_start(loaded.model, source_steps)
    print(f"warm-started from {loaded.source} (step {int(trainer.step.numpy())})")
  if FLAGS.mode == "train" and trainer.is_chief:  # An eval may run beside its training.
    run_dir_lock = training.lock_run_dir(FLAGS.run_dir)  # pylint: disable=unused-variable
    # Held while this function runs: the file stays open until it returns.
  training.prepare_run_dir(FLAGS.run_dir, config, FLAGS.mixed_precision,
                           training=FLAGS.mode == "train")
  step = trainer.restore()
  if FLAGS.mode == "train":
    # Built once the step is known: a resumed (or warm-started) run is seeded from it,
    # for other crops and shuffles than the first steps had (its noise: the restored
    # or reseeded Sampling state); a fresh run from config.seed, as seeded above.
    train_config = training.seed_run(config, step) if step else config
    train_dataset = source.dataset(train_config, "train", cache=FLAGS.cache_decoded_audio)
  print(f"config {config.name}: {trainer.model.count_params():,} parameters, "
        f"{config.clip_seconds:g} s clips at {config.sample_rate_hz} Hz, "
        f"{strategy.num_replicas_in_sync} replica(s); step {step}")
  eval_batches = FLAGS.eval_num_batches or None
  if FLAGS.mode == "train":
    summary = trainer.train(train_dataset, FLAGS.num_steps, progress=FLAGS.progress)
    print(f"\ntrained steps {summary.start_step} -> {summary.end_step} in {summary.seconds:.1f} s "
          f"({summary.examples_per_second:.2f} clips/s); non-finite steps skipped: "
          f"{summary.nonfinite_steps}; {source.skipped.summary()}")
    if summary.stopped_by:
      print(f"stopped by {summary.stopped_by}: checkpoint written at step {summary.end_step}")
      return 0
  eval_dataset, split_name = _eval_dataset(source, config)
  try:
    means = trainer.evaluate(eval_dataset, eval_batches)
  except training.NoEvalClipsError:
    message = (f"{source.examples_path}: its {split_name} split gave no clips (it is empty, or "
               f"none of its files could be read; {source.skipped.summary()})")
    if FLAGS.mode == "eval":
      raise data.DataError(message) from None
    print(f"{message}: eval pass skipped")
    return 0
  print(f"eval on the {split_name} split at step {int(trainer.step.numpy())}:")
  print(training.format_losses(means))
  print(source.skipped.summary())
  return 0


def run(argv):
  return common.run_safely("wave_music_vae_train", main, argv)


def console_entry_point():
  common.show_in_help(__name__)
  app.run(lambda argv: sys.exit(run(argv)))


if __name__ == "__main__":
  console_entry_point()
