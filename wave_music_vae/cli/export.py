r"""Exports a trained model as a SavedModel for TF Serving (TF Serving's folder layout).

Usage:
  wave_music_vae_export --run_dir=runs/gtzan --export_dir=/srv/models --model_name=gtzan
  wave_music_vae_export --checkpoint_file=runs/gtzan/train/ckpt-40 --export_dir=/srv/models \
      [--config=gtzan] [--version=3]
  wave_music_vae_export --export_dir=/srv/models     # the checkpoint shipped in checkpoints/

Writes `export_dir/<model_name>/<version>/` (saved_model.pb, variables/, assets.extra/):
the version is one above the highest present unless `--version` is given, and an
existing version is never overwritten. The export is written under a hidden name and
renamed into place, so a server watching `export_dir` never loads half of one. Serve it
with `docker run -p 8501:8501 -v /srv/models/NAME:/models/NAME -e MODEL_NAME=NAME
tensorflow/serving`; the signatures are listed in `wave_music_vae/export.py`.
"""

import sys

from absl import app
from absl import flags
from absl import logging

from wave_music_vae import checkpoints
from wave_music_vae import export
from wave_music_vae import output_locations
from wave_music_vae.cli import common

FLAGS = flags.FLAGS

common.define_config_flags()
flags.DEFINE_string("checkpoint_file", None, "A shipped checkpoint folder, a run directory or a "
                    "training checkpoint prefix (RUN/train/ckpt-N). Default: the shipped one.")
flags.DEFINE_string("run_dir", None, "A training run directory: its newest checkpoint is exported.")
flags.DEFINE_string("export_dir", None, "Folder of served models (TF Serving's model base path "
                    "is export_dir/model_name).")
flags.DEFINE_string("model_name", export.DEFAULT_MODEL_NAME, "The model's name in TF Serving "
                    "(MODEL_NAME, the /v1/models/NAME URL).")
flags.DEFINE_integer("version", None, "Version folder to write (a positive integer); default: "
                     "one above the highest present. An existing version is never overwritten.")


def main(argv):
  if len(argv) > 1:
    raise common.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  if not FLAGS.export_dir:
    raise common.UsageError("--export_dir is required")
  if FLAGS.checkpoint_file and FLAGS.run_dir:
    raise common.UsageError("give only one of --checkpoint_file or --run_dir")
  if FLAGS.hparams and not FLAGS.config:
    raise common.UsageError("--hparams needs --config")
  shipped = checkpoints.default_checkpoint()
  if not FLAGS.checkpoint_file and not FLAGS.run_dir and not shipped.exists():
    raise common.UsageError(f"no --checkpoint_file or --run_dir given, and the shipped checkpoint "
                            f"{shipped} is not there; name a checkpoint")
  output_locations.check_folder(FLAGS.export_dir)  # Fail before loading.
  export.version_path(FLAGS.export_dir, FLAGS.model_name, FLAGS.version)
  if not FLAGS.verbose:
    logging.set_verbosity(logging.WARNING)   # tf.saved_model.save logs each function it writes.
  config = common.load_config() if FLAGS.config else None
  loaded = checkpoints.load(FLAGS.checkpoint_file, FLAGS.run_dir, config)
  path = export.export_model(loaded, FLAGS.export_dir, FLAGS.model_name, FLAGS.version)
  print(f"exported {loaded.source} (config {loaded.config.name}, "
        f"{len(loaded.attributes)} attribute vector(s)) to {path}")
  return 0


def run(argv):
  return common.run_safely("wave_music_vae_export", main, argv)


def console_entry_point():
  common.show_in_help(__name__)
  app.run(lambda argv: sys.exit(run(argv)))


if __name__ == "__main__":
  console_entry_point()
