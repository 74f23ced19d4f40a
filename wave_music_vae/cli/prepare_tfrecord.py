r"""Cuts songs into clips and writes sharded TFRecords with an Apache Beam pipeline.

Usage:
  wave_music_vae_prepare_tfrecord --input_audio_filepatterns='/data/songs/*/*.mp3' \
      --output_tfrecord_path=/data/tfrecords/songs.tfrecord \
      [--example_secs=4 --hop_secs=2 --num_shards=16 --eval_split_fraction=0.1 \
       --sample_rate_hz=22050] [Beam pipeline options, e.g. --runner=DataflowRunner]
  wave_music_vae_train --config=folder --examples_path='/data/tfrecords/songs.tfrecord*' ...
  wave_music_vae_prepare_tfrecord --input_audio_filepatterns=/data/gtzan \
      --data_layout=gtzan --split_method=official --output_tfrecord_path=/data/tfrecords/gtzan
  wave_music_vae_train --config=gtzan --hparams=split_method=official \
      --examples_path='/data/tfrecords/gtzan*' ...

Writes PREFIX-00000-of-000NN ... and a JSON manifest (counts, seconds, labels,
skipped files with their reasons) named manifest-BASENAME.json beside them. Each
entry of `--input_audio_filepatterns` is a file pattern (`*` within a folder, `**`
across folders; local, gs://, s3://, hdfs://) or a local folder, listed with
`--data_layout` as the training reader lists it. Unreadable files are skipped and
listed, never fatal. `--split_method=official` marks the dataset's own split (GTZAN's
fault-filtered train/test, FMA's tracks.csv training/test; validation and unlisted songs
are not written); train with the same `split_method`, which training checks. Every flag
this tool does not define is passed to Beam (`--runner`, `--direct_num_workers`,
`--direct_running_mode=multi_processing`, `--project`, ...); an option Beam does not know
either is an error. Needs the `[beam]` extra: pip install -e '.[beam]'.
"""

import logging
import sys

from absl import app
from absl import flags

from wave_music_vae import config as config_lib
from wave_music_vae import data
from wave_music_vae.cli import common

FLAGS = flags.FLAGS

flags.DEFINE_list("input_audio_filepatterns", None,
                  "Comma-separated file patterns or folders of songs.")
flags.DEFINE_string("output_tfrecord_path", None,
                    "Prefix of the TFRecord shards (PREFIX-00000-of-000NN).")
flags.DEFINE_float("example_secs", 4.0, "Clip length (seconds); the config's clip_seconds.")
flags.DEFINE_float("hop_secs", None, "Seconds between clip starts (default: --example_secs, "
                   "no overlap).")
flags.DEFINE_integer("num_shards", 0, "Number of TFRecord files (0: the runner chooses).")
flags.DEFINE_float("eval_split_fraction", 0.1, "Share of files whose clips are marked 'eval' "
                   "(--split_method=hash).")
flags.DEFINE_enum("split_method", "hash", list(config_lib.SPLIT_METHODS),
                  "hash: by a hash of each song's path, at --eval_split_fraction; official: the "
                  "dataset's own train/test split (--data_layout=gtzan or fma); the config's "
                  "split_method.")
flags.DEFINE_integer("sample_rate_hz", 22050, "Rate of the stored clips (Hz); the config's.")
flags.DEFINE_enum("data_layout", "folder", list(data.LISTERS),
                  "How folders among the inputs are listed (labels, split paths).")
flags.DEFINE_bool("overwrite", False, "Replace this prefix's existing shards and manifest.")
flags.DEFINE_bool("verbose", False, "Show tracebacks and Beam's own logging.")


class MissingExtraError(ImportError):
  """The optional apache_beam dependency is not installed."""


def _prepare_module():
  try:
    from wave_music_vae.beam import prepare  # pylint: disable=g-import-not-at-top
  except ModuleNotFoundError as e:
    if not (e.name or "").startswith("apache_beam"):
      raise
    raise MissingExtraError("apache_beam is not installed; install with "
                            "pip install -e '.[beam]'") from None
  return prepare


def main(argv):
  for name in ("input_audio_filepatterns", "output_tfrecord_path"):
    if not FLAGS[name].value:
      raise common.UsageError(f"--{name} is required")
  if not FLAGS.verbose:
    # Beam logs an error raised inside a step (with its traceback) before raising it, as
    # this command then reports it in one line; an interruption too.
    logging.getLogger("apache_beam").setLevel(logging.CRITICAL)
  prepare = _prepare_module()
  result = prepare.prepare_tfrecord(
      FLAGS.input_audio_filepatterns, FLAGS.output_tfrecord_path,
      example_secs=FLAGS.example_secs, hop_secs=FLAGS.hop_secs, num_shards=FLAGS.num_shards,
      eval_split_fraction=FLAGS.eval_split_fraction, sample_rate_hz=FLAGS.sample_rate_hz,
      layout=FLAGS.data_layout, pipeline_options=argv[1:], overwrite=FLAGS.overwrite,
      split_method=FLAGS.split_method)
  manifest = result.manifest
  splits = manifest["splits"]
  print(f"wrote {manifest['clips']} clips (train {splits['train']['clips']}, eval "
        f"{splits['eval']['clips']}; {manifest['clips'] * manifest['example_secs']:g} s) from "
        f"{manifest['files_read']} of {manifest['files_listed']} files to "
        f"{len(manifest['tfrecord_files'])} shard(s) {manifest['output_tfrecord_path']}-*")
  if manifest["files_in_no_split"]:
    print(f"{manifest['files_in_no_split']} file(s) in neither split (split_method="
          f"{manifest['split_method']}) left out")
  if manifest["files_skipped"]:
    print(f"{manifest['files_skipped']} unreadable file(s) skipped; reasons in the manifest")
  print(f"manifest: {result.manifest_path}")
  return 0


def run(argv):
  return common.run_safely("wave_music_vae_prepare_tfrecord", main, argv)


def console_entry_point():
  common.show_in_help(__name__)
  # Flags this tool does not define are left in argv for Beam's pipeline options.
  app.run(lambda argv: sys.exit(run(argv)),
          flags_parser=lambda argv: FLAGS(argv, known_only=True))


if __name__ == "__main__":
  console_entry_point()
