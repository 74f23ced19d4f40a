r"""Input pipeline: our tf.data reader + log-mel against librosa, in audio seconds per wall second.

Usage:
  python benchmarks/input_pipeline.py [--num_songs=8 --song_secs=30 --formats=wav,flac,ogg,mp3 \
      --repetitions=3 --folder=DIR --profile --reader_overhead --quick]

Per format, the same files go through
  ours     `data.decoded_songs` (tf.data, files decoded in parallel by `audio_io.read_audio`:
           tensorflow-io for WAV, libsndfile for FLAC/Ogg/MP3, mixed to mono,
           soxr-resampled to 22050 Hz), then `MelSpectrogram.log_mel_db` (tf.signal, in a
           tf.function, as in the model) over each whole song;
  librosa  `librosa.load(sr=22050)` (libsndfile, soxr) then `melspectrogram` (HTK mels,
           no norm, the same n_fft, hop and mel count) and `power_to_db`, file by file.
Both are warmed up by one untimed pass. Throughput is the seconds of audio read
divided by the median wall seconds of a pass over all files. The default files
are synthesized 44.1 kHz stereo songs (so both sides mix down and resample);
`--folder` uses up to `--num_songs` of your own files instead (grouped by extension).

`--reader_overhead` also times the decoding alone (no log-mel), in wall and CPU
seconds, three ways that call the same `audio_io.read_audio`: through tf.data as
shipped, through tf.data with its autotuner off (the decode map's parallelism then stays
at its starting value), and from a plain Python thread pool of one thread per core. What tf.data adds
on top of the decoders' own work shows in the CPU column.
"""

import collections
from concurrent import futures
import os
import tempfile
import time
from pathlib import Path

from absl import app
from absl import flags

import common

common.quiet_tensorflow()  # Before TensorFlow is imported.

# pylint: disable=g-import-not-at-top,wrong-import-position
import librosa
import numpy as np
import tensorflow as tf

from wave_music_vae import audio_io
from wave_music_vae import config as config_lib
from wave_music_vae import data
from wave_music_vae import spectral
# pylint: enable=g-import-not-at-top,wrong-import-position

FLAGS = flags.FLAGS

common.define_flags(repetitions=5)
flags.DEFINE_string("config", "gtzan", "Config giving the rate and log-mel settings.")
flags.DEFINE_list("formats", ["wav", "flac", "ogg", "mp3"], "Formats of the synthesized files.")
flags.DEFINE_integer("num_songs", 8, "Songs per format (or files taken from --folder).")
flags.DEFINE_float("song_secs", 30.0, "Length of each synthesized song (seconds).")
flags.DEFINE_string("folder", None, "Read your own files from this folder instead.")
flags.DEFINE_bool("reader_overhead", False, "Also time the decoding alone through tf.data, "
                  "through tf.data without its autotuner, and from plain Python threads.")


class Ours:
  """`data.decoded_songs` + the log-mel as the model computes it; one call is one pass.

  tf.data decodes the next files in its own threads while the log-mel of the current
  one runs in a compiled `tf.function`, as the model's `LogMel` layer runs inside the
  compiled train or encode step. (Mapped inside tf.data instead, the same graph runs
  about twice as slowly: tf.data's function runtime does not apply grappler's
  optimisations to it.)
  """

  def __init__(self, paths, config):
    mel = spectral.MelSpectrogram.from_config(config)
    self.skipped = data.SkippedFiles()
    files = [data.AudioFile(str(p), p.name) for p in paths]
    songs = data.decoded_songs(files, config.sample_rate_hz, self.skipped)
    self.dataset = songs.map(lambda audio, label: audio).prefetch(tf.data.AUTOTUNE)
    self.log_mel = tf.function(mel.log_mel_db,
                               input_signature=[tf.TensorSpec([None, None], tf.float32)])

  def __call__(self) -> int:
    frames = sum(int(self.log_mel(audio[tf.newaxis]).shape[1]) for audio in self.dataset)
    if len(self.skipped):
      raise RuntimeError(f"our reader skipped files: {self.skipped.causes}")
    return frames


class Librosa:
  """librosa.load + melspectrogram + power_to_db over `paths`, one file after another."""

  def __init__(self, paths, config):
    self.paths = [str(p) for p in paths]
    self.config = config

    def one(path):
      c = self.config
      y, _ = librosa.load(path, sr=c.sample_rate_hz)
      power = librosa.feature.melspectrogram(
          y=y, sr=c.sample_rate_hz, n_fft=c.n_fft, hop_length=c.hop_length, n_mels=c.n_mels,
          fmin=c.mel_fmin_hz, fmax=c.mel_fmax_hz, htk=True, norm=None)
      return librosa.power_to_db(power, top_db=None)
    self.one = one

  def __call__(self) -> int:
    return sum(self.one(path).shape[-1] for path in self.paths)


def serial_ours(paths, config):
  """Our per-file work without tf.data, for cProfile: read_audio then log-mel."""
  mel = spectral.MelSpectrogram.from_config(config)
  for path in paths:
    mel.log_mel_db(audio_io.read_audio(path, config.sample_rate_hz)[np.newaxis])


def decoders_alone(paths, config):
  """The three ways of decoding `paths` that `--reader_overhead` compares, by name."""
  files = [data.AudioFile(str(p), p.name) for p in paths]

  def through_tf_data(options=None):
    songs = data.decoded_songs(files, config.sample_rate_hz, data.SkippedFiles())
    songs = songs.map(lambda audio, label: audio).prefetch(tf.data.AUTOTUNE)
    songs = songs.with_options(options) if options else songs
    return lambda: [int(audio.shape[0]) for audio in songs]

  fixed = tf.data.Options()
  fixed.autotune.enabled = False
  pool = futures.ThreadPoolExecutor(os.cpu_count())
  read = lambda path: audio_io.read_audio(path, config.sample_rate_hz)
  return {"tf.data (ours)": through_tf_data(),
          "tf.data, autotuner off": through_tf_data(fixed),
          "Python threads": lambda: [len(audio) for audio in pool.map(read, paths)]}


def wall_and_cpu_seconds(contenders, repetitions):
  """({name: wall seconds}, {name: process CPU seconds}) of alternated calls, after a warm-up."""
  for contender in contenders.values():
    contender()
  cpu = {name: [] for name in contenders}

  def with_cpu_time(name, contender):
    def call():
      started = time.process_time()
      contender()
      cpu[name].append(time.process_time() - started)
    return call
  wall = common.alternate({name: with_cpu_time(name, c) for name, c in contenders.items()},
                          repetitions, warmup=())
  return wall, cpu


def synthesized_files(folder: Path, formats, num_songs: int, song_secs: float):
  return {fmt: [common.write_song(folder / f"song_{i:02d}.{fmt}", song_secs, seed=i)
                for i in range(num_songs)] for fmt in formats}


def main(argv):
  del argv
  config = config_lib.load_config(FLAGS.config)
  num_songs, song_secs, repetitions = FLAGS.num_songs, FLAGS.song_secs, FLAGS.repetitions
  if FLAGS.quick:
    num_songs, song_secs, repetitions = 2, 4.0, 1
  with tempfile.TemporaryDirectory() as tmp:
    if FLAGS.folder:
      by_format = collections.defaultdict(list)
      for path in common.folder_songs(FLAGS.folder, num_songs):
        by_format[path.suffix.lower().lstrip(".")].append(path)
      source = f"{sum(map(len, by_format.values()))} files from {FLAGS.folder}"
    else:
      by_format = synthesized_files(Path(tmp), FLAGS.formats, num_songs, song_secs)
      source = (f"{num_songs} synthesized songs x {song_secs:g} s per format, "
                f"{common.SOURCE_RATE_HZ} Hz stereo")
    rows, notes, overhead_rows = [], [], []
    for fmt, paths in by_format.items():
      audio_seconds = sum(audio_io.duration_seconds(p) for p in paths)
      ours, reference = Ours(paths, config), Librosa(paths, config)
      frames = {"ours": ours(), "librosa": reference()}   # Also the warm-up pass.
      if frames["ours"] != frames["librosa"]:
        notes.append(f"{fmt}: the decoders disagree on length: ours gave {frames['ours']} "
                     f"frames, librosa {frames['librosa']}")
      times = common.alternate({"ours": ours, "librosa": reference}, repetitions, warmup=())
      speed = {name: audio_seconds / common.median(t) for name, t in times.items()}
      rows.append([fmt, len(paths), f"{audio_seconds:.0f}",
                   f"{common.median(times['ours']):.2f}", f"{speed['ours']:.1f}",
                   f"{common.median(times['librosa']):.2f}", f"{speed['librosa']:.1f}",
                   f"{speed['ours'] / speed['librosa']:.2f}x"])
      if FLAGS.reader_overhead:
        wall, cpu = wall_and_cpu_seconds(decoders_alone(paths, config), repetitions)
        for name in wall:
          overhead_rows.append([fmt, name, f"{common.median(wall[name]):.3f}",
                                f"{common.median(cpu[name]):.3f}",
                                f"{audio_seconds / common.median(wall[name]):.1f}"])
      if FLAGS.profile:
        print(f"\n### {fmt}: ours, one file after another (cProfile)")
        print(common.python_profile(lambda paths=paths: serial_ours(paths, config)))
        print(f"\n### {fmt}: librosa (cProfile)")
        print(common.python_profile(reference))
  common.print_table(
      "Input pipeline: decode + resample + log-mel, audio seconds per wall second",
      ["format", "files", "audio s", "ours s", "ours audio s/s", "librosa s",
       "librosa audio s/s", "ours / librosa"], rows,
      [f"{source}; config {config.name}: {config.sample_rate_hz} Hz, n_fft {config.n_fft}, "
       f"hop {config.hop_length}, {config.n_mels} mels",
       f"median of {repetitions} alternated passes after one warm-up pass each; "
       "target: ours / librosa >= 2"] + notes)
  if overhead_rows:
    common.print_table(
        "Decoding alone (audio_io.read_audio), three ways: wall and process CPU seconds a pass",
        ["format", "decoded through", "wall s", "CPU s", "audio s/s"], overhead_rows,
        [f"{source}; {os.cpu_count()} threads or parallel calls",
         f"median of {repetitions} alternated passes after one warm-up pass each"])


if __name__ == "__main__":
  app.run(main)
