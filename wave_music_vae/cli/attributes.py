r"""Computes attribute vectors over a labelled dataset and saves them beside the checkpoint.

Usage:
  wave_music_vae_attributes --run_dir=runs/gtzan --examples_path=/data/gtzan \
      [--data_layout=gtzan] [--clips_per_file=8] [--overwrite]
  wave_music_vae_attributes --checkpoint_file=checkpoints/soundtracks \
      --examples_path=/data/soundtracks --data_layout=folder

For each label (GTZAN or FMA genre, or first sub-folder) the vector is the label's
mean latent minus the mean over all clips (see `wave_music_vae.attributes`). They
are written to `attributes.json` in the run directory or shipped checkpoint folder;
`wave_music_vae_generate --mode=tweak --attribute=NAME:AMOUNT` then uses them, and
`wave_music_vae_generate --list_attributes` lists them. An existing
`attributes.json` is replaced only with --overwrite.
"""

import sys

from absl import app
from absl import flags

from wave_music_vae import attributes
from wave_music_vae import checkpoints
from wave_music_vae import data
from wave_music_vae import inference
from wave_music_vae import output_locations
from wave_music_vae.cli import common

FLAGS = flags.FLAGS

common.define_config_flags()
flags.DEFINE_string("checkpoint_file", None, "A shipped checkpoint folder, a run directory or "
                    "a RUN/train/ckpt-N prefix (default: the shipped checkpoint).")
flags.DEFINE_string("run_dir", None, "A training run directory: its newest checkpoint is used.")
flags.DEFINE_string("examples_path", None, "Folder of labelled songs.")
flags.DEFINE_enum("data_layout", None, sorted(data.LISTERS), "How the folder is labelled "
                  "(default: the checkpoint config's layout, or folder).")
flags.DEFINE_integer("clips_per_file", 8, "Most clips encoded per song (evenly spaced).")
flags.DEFINE_integer("batch_size", 16, "Clips per encoder call.")
flags.DEFINE_bool("overwrite", False, "Replace an existing attributes.json.")
flags.DEFINE_bool("progress", True, "Show a progress bar.")


def main(argv):
  if len(argv) > 1:
    raise common.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  if not FLAGS.examples_path:
    raise common.UsageError("--examples_path is required")
  for name in ("clips_per_file", "batch_size"):
    if FLAGS[name].value < 1:
      raise common.UsageError(f"--{name} must be at least 1")
  if FLAGS.checkpoint_file and FLAGS.run_dir:
    raise common.UsageError("give only one of --checkpoint_file or --run_dir")
  if FLAGS.hparams and not FLAGS.config:
    raise common.UsageError("--hparams needs --config")
  config = common.load_config() if FLAGS.config else None
  if not (FLAGS.checkpoint_file or FLAGS.run_dir):
    default = checkpoints.default_checkpoint()
    if not (default / checkpoints.WEIGHTS_FILE).is_file():
      raise common.UsageError(f"no --checkpoint_file or --run_dir given, and the shipped "
                              f"checkpoint {default} is not installed")
  loaded = checkpoints.load(FLAGS.checkpoint_file, FLAGS.run_dir, config)
  target = loaded.directory / checkpoints.ATTRIBUTES_FILE
  if target.exists() and not FLAGS.overwrite:
    raise common.UsageError(f"{target}: already exists (pass --overwrite to replace it)")
  output_locations.check_folder(loaded.directory)
  layout = FLAGS.data_layout or (loaded.config.data_layout
                                 if loaded.config.data_layout in data.LISTERS else "folder")
  files = data.list_audio_files(FLAGS.examples_path, layout)
  print(f"model: {loaded.source}; {len(files)} file(s) in {FLAGS.examples_path} "
        f"(layout {layout})")
  result = attributes.compute_attribute_vectors(
      inference.KerasBackend(loaded), files, FLAGS.clips_per_file, FLAGS.batch_size,
      progress=FLAGS.progress)
  path = checkpoints.save_attributes(loaded.directory, result.vectors, result.counts,
                                     loaded.steps)
  print(f"\nwrote {len(result.vectors)} attribute vector(s) to {path}; "
        f"{result.unlabelled_files} unlabelled file(s) and {result.silent_clips} silent "
        f"clip(s) left out; {result.skipped.summary()}")
  for label, vector in sorted(result.vectors.items()):
    print(f"  {label}: {result.counts[label]} clips, norm {float((vector ** 2).sum()) ** 0.5:.3f}")
  return 0


def run(argv):
  return common.run_safely("wave_music_vae_attributes", main, argv)


def console_entry_point():
  common.show_in_help(__name__)
  app.run(lambda argv: sys.exit(run(argv)))


if __name__ == "__main__":
  console_entry_point()
