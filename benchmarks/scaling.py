r"""Scaling: how the costs grow with the length of the audio and with the batch size.

Usage:
  python benchmarks/scaling.py [--lengths_secs=5,30,120,600 --batch_sizes=1,2,4,8,16 \
      --config=soundtracks --griffin_lim_iters=32 --repetitions=1 --profile --quick]

Length (one song of each length, synthesized, written as 44.1 kHz stereo WAV):
  read + log-mel, ours     `audio_io.read_audio` then `MelSpectrogram.log_mel_db`;
  read + log-mel, librosa  `librosa.load` then `melspectrogram` + `power_to_db`;
  Griffin-Lim, whole song  our mel inverse + Griffin-Lim over the whole song in one call;
  reconstruct, windows     `generation.reconstruct` through the Keras model: clip-long
                           windows encoded and decoded a batch at a time, then stitched.
Batch (clip-long windows of `--config`):
  encode         `KerasBackend.encode`: log-mel, conv front end, BiLSTM;
  decode         the hierarchical decoder alone, z -> log-mel;
  Griffin-Lim    our mel inverse + Griffin-Lim of the decoded log-mels.
Each length's (or batch's) operations are timed alternately after an untimed
warm-up (Griffin-Lim's with one iteration, the reconstruction's on one window:
same graphs, less time). "relative cost" is the cost per second of audio (per
clip) divided by that at the shortest length (at batch 1): 1.00 everywhere means
linear in the audio's length (and no gain from batching).
The model has random weights (its speed does not depend on its training).
"""

import tempfile
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
from wave_music_vae import checkpoints
from wave_music_vae import config as config_lib
from wave_music_vae import generation
from wave_music_vae import inference
from wave_music_vae import spectral
from wave_music_vae import training
from wave_music_vae.model import WaveMusicVAE
# pylint: enable=g-import-not-at-top,wrong-import-position

FLAGS = flags.FLAGS

common.define_flags(repetitions=1)
flags.DEFINE_list("lengths_secs", ["5", "30", "120", "600"], "Song lengths (seconds).")
flags.DEFINE_list("batch_sizes", ["1", "2", "4", "8", "16"], "Windows per call.")
flags.DEFINE_string("config", "soundtracks", "Config of the model (random weights) and log-mel.")
flags.DEFINE_integer("griffin_lim_iters", 32, "Griffin-Lim iterations.")


def log_mel_librosa(path, config):
  y, _ = librosa.load(str(path), sr=config.sample_rate_hz)
  return librosa.power_to_db(librosa.feature.melspectrogram(
      y=y, sr=config.sample_rate_hz, n_fft=config.n_fft, hop_length=config.hop_length,
      n_mels=config.n_mels, fmin=config.mel_fmin_hz, fmax=config.mel_fmax_hz, htk=True,
      norm=None), top_db=None)


def relative(costs):
  """Each cost divided by the first one, formatted."""
  return [f"{cost / costs[0]:.2f}" for cost in costs]


def length_rows(config, backend, lengths, iterations, repetitions, folder: Path):
  mel = spectral.MelSpectrogram.from_config(config)
  rate = config.sample_rate_hz
  per_operation = {}
  for seconds in lengths:
    path = common.write_song(folder / f"song_{seconds:g}.wav", seconds)
    song = audio_io.read_audio(path, rate)
    log_mel_db = mel.log_mel_db(song[np.newaxis])
    whole_song = tf.function(lambda db, iters, n=len(song): mel.db_to_waveform(db, n, iters))
    whole_song(log_mel_db, tf.constant(1))                        # Traces: warm-up.
    generation.reconstruct(backend, song[:config.clip_samples], 1)  # Warm-up.
    log_mel_librosa(path, config)                                 # Warm-up.
    times = common.alternate({
        "read + log-mel, ours": lambda p=path: mel.log_mel_db(audio_io.read_audio(p, rate)[None]),
        "read + log-mel, librosa": lambda p=path: log_mel_librosa(p, config),
        "Griffin-Lim, whole song": lambda db=log_mel_db, f=whole_song: f(
            db, tf.constant(iterations)).numpy(),
        "reconstruct, windows": lambda s=song: generation.reconstruct(backend, s, iterations),
    }, repetitions, warmup=())
    for name, values in times.items():
      per_operation.setdefault(name, []).append((seconds, common.median(values)))
    (folder / path.name).unlink()
  rows = []
  for name, measured in per_operation.items():
    costs = [wall / seconds for seconds, wall in measured]
    for (seconds, wall), relative_cost in zip(measured, relative(costs)):
      rows.append([name, f"{seconds:g}", f"{wall:.2f}", f"{seconds / wall:.1f}",
                   f"{60 * wall / seconds:.2f}", relative_cost])
  return rows


def batch_rows(config, backend, model, batch_sizes, iterations, repetitions):
  mel = spectral.MelSpectrogram.from_config(config)
  decoder = tf.function(model.decode,
                        input_signature=[tf.TensorSpec([None, config.z_size], tf.float32)])
  griffin_lim = tf.function(
      lambda model_log_mel: mel.to_waveform(model_log_mel, config.clip_samples, iterations),
      input_signature=[tf.TensorSpec([None, config.num_frames, config.n_mels], tf.float32)])
  clip = common.synth_music(config.clip_seconds, config.sample_rate_hz)
  per_operation = {}
  for batch in batch_sizes:
    clips = np.repeat(clip[np.newaxis], batch, axis=0)
    z = np.random.default_rng(batch).standard_normal([batch, config.z_size]).astype(np.float32)
    log_mel = tf.cast(decoder(z), tf.float32)
    times = common.alternate({
        "encode": lambda c=clips: backend.encode(c),
        "decode (decoder only)": lambda z=z: decoder(z).numpy(),
        "Griffin-Lim": lambda m=log_mel: griffin_lim(m).numpy(),
    }, repetitions)
    for name, values in times.items():
      per_operation.setdefault(name, []).append((batch, common.median(values)))
  rows = []
  for name, measured in per_operation.items():
    costs = [wall / batch for batch, wall in measured]
    for (batch, wall), relative_cost in zip(measured, relative(costs)):
      rows.append([name, batch, f"{wall:.3f}", f"{1000 * wall / batch:.1f}",
                   f"{batch * config.clip_seconds / wall:.1f}", relative_cost])
  return rows


def profile_whole_song(config, shortest: float, longest: float, iterations: int) -> None:
  """TensorFlow's profiler over whole-song Griffin-Lim at the shortest and longest lengths."""
  mel = spectral.MelSpectrogram.from_config(config)
  for seconds in (shortest, longest):
    song = common.synth_music(seconds, config.sample_rate_hz)
    log_mel_db = mel.log_mel_db(song[np.newaxis])
    whole_song = tf.function(lambda db, iters, n=len(song): mel.db_to_waveform(db, n, iters))
    whole_song(log_mel_db, tf.constant(1))
    print(f"\n### Griffin-Lim over a whole {seconds:g} s song (TensorFlow profiler)")
    print(common.op_profile(lambda: whole_song(log_mel_db, tf.constant(iterations)).numpy()))


def main(argv):
  del argv
  config_name, iterations, repetitions = FLAGS.config, FLAGS.griffin_lim_iters, FLAGS.repetitions
  lengths = [float(s) for s in FLAGS.lengths_secs]
  batch_sizes = [int(b) for b in FLAGS.batch_sizes]
  if FLAGS.quick:
    config_name, iterations, repetitions = "tiny", 8, 1
    lengths, batch_sizes = [2.0, 4.0], [1, 2]
  config = config_lib.load_config(config_name)
  training.seed_everything(config.seed)
  model = WaveMusicVAE(config)
  model.build()
  backend = inference.KerasBackend(checkpoints.LoadedModel(
      model, config, {}, f"random weights ({config.name})", Path(tempfile.gettempdir())))
  with tempfile.TemporaryDirectory() as tmp:
    rows = length_rows(config, backend, lengths, iterations, repetitions, Path(tmp))
    if FLAGS.profile:
      profile_whole_song(config, min(lengths), max(lengths), iterations)
      song = common.synth_music(max(lengths), config.sample_rate_hz)
      print(f"\n### reconstruct of a {max(lengths):g} s song (cProfile)")
      print(common.python_profile(lambda: generation.reconstruct(backend, song, iterations)))
  common.print_table(
      "Scaling with song length", ["operation", "song s", "wall s", "x real time",
                                   "s per audio min", "relative cost"], rows,
      [f"config {config.name} ({config.clip_seconds:g} s windows), random weights, "
       f"{iterations} Griffin-Lim iterations; synthesized 44.1 kHz stereo WAV songs",
       f"median of {repetitions} alternated call(s) per length after a warm-up; relative cost: "
       "seconds per audio second / that at the shortest length"])
  rows = batch_rows(config, backend, model, batch_sizes, iterations, repetitions)
  common.print_table(
      "Scaling with batch size", ["operation", "batch", "wall s", "ms per clip",
                                  "x real time", "relative cost"], rows,
      [f"config {config.name}: {config.clip_seconds:g} s clips, {iterations} Griffin-Lim "
       "iterations, random weights",
       f"median of {repetitions} alternated call(s) per batch after one warm-up call each; "
       "relative cost: seconds per clip / that at the smallest batch"])


if __name__ == "__main__":
  app.run(main)
