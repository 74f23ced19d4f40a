r"""Mel inversion: our in-graph mel inverse + fast Griffin-Lim against librosa's `mel_to_audio`.

Usage:
  python benchmarks/griffin_lim.py [--clip_secs=30 --mel_to_audio_secs=30 --batch_sizes=1,8 \
      --iterations=32 --repetitions=3 --folder=DIR --profile --quick]

Each side inverts the mel power spectrogram its own forward transform makes of each
clip (the same STFT, HTK mels without norm, the same floor of db_floor): tf.signal's mel
matrix is close to librosa's `filters.mel(htk=True, norm=None)` but not equal (weights
differ by up to 0.005), and a side given the other's mel would fit a basis it does not
invert. Both run the same number of Griffin-Lim iterations with momentum 0.99:
  ours     our `MelSpectrogram.log_mel_db`, then `MelSpectrogram.db_to_waveform` in a
           `tf.function`: non-negative mel inverse (multiplicative updates) then
           batched Griffin-Lim, all tf.signal;
  librosa  `librosa.feature.melspectrogram`, then `librosa.feature.inverse.mel_to_audio`
           on the batch [batch, n_mels, frames]: NNLS mel inverse (scipy's L-BFGS-B)
           then `griffinlim`.
A second pair isolates Griffin-Lim: our `spectral.griffin_lim` against
`librosa.griffinlim`, both from the same linear magnitude (our mel inverse's).

Speed is x real time: seconds of audio produced per wall second (median of the
alternated calls). Quality is the multi-resolution STFT distance of each output
to the original clip (`metrics.multi_resolution_stft_distance`; lower is better),
the median over the clips; "quality loss" is ours / librosa - 1. Targets: ours
>= 10x librosa's speed with a quality loss of at most 5%.

Clips are 30 s of synthesized music (`common.synth_music`), or, with `--folder`,
`--clip_secs` from the middle of each of your files. librosa's mel inverse costs
from one second to minutes per second of audio on two cores, depending on the
signal (scipy's L-BFGS-B, see docs/benchmarks.md), so `--mel_to_audio_secs` can
run the mel -> audio pair on the first seconds of each clip while the Griffin-Lim
pair keeps the full length.
"""

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
from wave_music_vae import metrics
from wave_music_vae import spectral
# pylint: enable=g-import-not-at-top,wrong-import-position

FLAGS = flags.FLAGS

common.define_flags(repetitions=3)
flags.DEFINE_string("config", "gtzan", "Config giving the rate, n_fft, hop and mel settings.")
flags.DEFINE_float("clip_secs", 30.0, "Length of each clip (seconds).")
flags.DEFINE_list("batch_sizes", ["1", "8"], "Clips per call.")
flags.DEFINE_integer("iterations", 32, "Griffin-Lim iterations, the same on both sides.")
flags.DEFINE_float("mel_to_audio_secs", None, "Clip length of the mel -> audio pair (default: "
                   "--clip_secs). librosa's NNLS mel inverse can take minutes per second of audio "
                   "on two cores: shorten this to fit a run in minutes.")
flags.DEFINE_string("folder", None, "Take clips from your own files in this folder instead.")


def clips(num_clips: int, clip_secs: float, sample_rate_hz: int) -> np.ndarray:
  """float32 [num_clips, samples]: synthesized, or from the middle of --folder's files."""
  samples = int(round(clip_secs * sample_rate_hz))
  if not FLAGS.folder:
    return np.stack([common.synth_music(clip_secs, sample_rate_hz, seed=i)
                     for i in range(num_clips)])
  paths = common.folder_songs(FLAGS.folder, num_clips)
  result = []
  for i in range(num_clips):
    path = paths[i % len(paths)]
    middle = max(audio_io.duration_seconds(path) / 2 - clip_secs / 2, 0.0)
    audio = audio_io.read_audio(path, sample_rate_hz, middle, clip_secs)
    result.append(np.pad(audio, (0, max(samples - len(audio), 0)))[:samples])
  return np.stack(result)


class Inversions:
  """Both sides' inversions of one batch of clips, as zero-argument callables."""

  def __init__(self, waveforms: np.ndarray, config, iterations: int):
    self.waveforms = waveforms
    self.config = config
    self.iterations = iterations
    self.num_samples = waveforms.shape[-1]
    self.mel = spectral.MelSpectrogram.from_config(config)
    self.log_mel_db = self.mel.log_mel_db(tf.constant(waveforms))            # [b, frames, mels]
    c = config
    self.librosa_mel_power = np.maximum(librosa.feature.melspectrogram(       # [b, mels, frames]
        y=waveforms, sr=c.sample_rate_hz, n_fft=c.n_fft, hop_length=c.hop_length,
        n_mels=c.n_mels, fmin=c.mel_fmin_hz, fmax=c.mel_fmax_hz, htk=True, norm=None,
        pad_mode="constant"), 10.0 ** (c.db_floor / 10.0))
    spec = tf.TensorSpec(self.log_mel_db.shape, tf.float32)
    self._ours = tf.function(lambda db: self.mel.db_to_waveform(db, self.num_samples, iterations),
                             input_signature=[spec])
    power = spectral.nonnegative_mel_inverse(spectral.db_to_power(self.log_mel_db),
                                             self.mel.weights)
    self.magnitude = tf.sqrt(power)                                           # [b, frames, bins]
    self._ours_griffin_lim = tf.function(
        lambda m: spectral.griffin_lim(m, config.n_fft, config.hop_length, self.num_samples,
                                       iterations),
        input_signature=[tf.TensorSpec(self.magnitude.shape, tf.float32)])
    self.outputs = {}

  def ours(self):
    self.outputs["ours"] = self._ours(self.log_mel_db).numpy()

  def librosa(self):
    c = self.config
    self.outputs["librosa"] = librosa.feature.inverse.mel_to_audio(
        self.librosa_mel_power, sr=c.sample_rate_hz, n_fft=c.n_fft, hop_length=c.hop_length,
        n_iter=self.iterations, length=self.num_samples, htk=True, norm=None,
        fmin=c.mel_fmin_hz, fmax=c.mel_fmax_hz)

  def ours_griffin_lim(self):
    self.outputs["ours_griffin_lim"] = self._ours_griffin_lim(self.magnitude).numpy()

  def librosa_griffin_lim(self):
    self.outputs["librosa_griffin_lim"] = librosa.griffinlim(
        np.transpose(self.magnitude.numpy(), [0, 2, 1]), n_iter=self.iterations,
        hop_length=self.config.hop_length, n_fft=self.config.n_fft, length=self.num_samples)

  def distance(self, name: str) -> float:
    """Median multi-resolution STFT distance of `name`'s outputs to the original clips."""
    return float(np.median(metrics.multi_resolution_stft_distance(self.outputs[name],
                                                                  self.waveforms)))


def main(argv):
  del argv
  config = config_lib.load_config(FLAGS.config)
  clip_secs, batch_sizes = FLAGS.clip_secs, [int(b) for b in FLAGS.batch_sizes]
  mel_to_audio_secs = FLAGS.mel_to_audio_secs or clip_secs
  iterations, repetitions = FLAGS.iterations, FLAGS.repetitions
  if FLAGS.quick:
    clip_secs, mel_to_audio_secs, batch_sizes, iterations, repetitions = 2.0, 0.25, [1], 8, 1
  long_clips = clips(max(batch_sizes), clip_secs, config.sample_rate_hz)
  short_clips = long_clips[:, :int(round(mel_to_audio_secs * config.sample_rate_hz))]
  rows = []
  for batch in batch_sizes:
    short = Inversions(short_clips[:batch], config, iterations)
    full = Inversions(long_clips[:batch], config, iterations) if clip_secs != mel_to_audio_secs \
        else short
    # librosa's mel_to_audio has nothing to compile and takes minutes: not warmed up.
    for what, seconds, inversions, names, warmup in (
        ("mel -> audio", mel_to_audio_secs, short, ("ours", "librosa"), ["ours"]),
        ("Griffin-Lim only", clip_secs, full, ("ours_griffin_lim", "librosa_griffin_lim"),
         ["ours", "librosa"])):
      ours, theirs = (getattr(inversions, name) for name in names)
      times = common.alternate({"ours": ours, "librosa": theirs}, repetitions, warmup)
      speed = {name: batch * seconds / common.median(t) for name, t in times.items()}
      quality = [inversions.distance(name) for name in names]
      rows.append([what, f"{seconds:g}", batch, f"{common.median(times['ours']):.2f}",
                   f"{speed['ours']:.1f}", f"{common.median(times['librosa']):.2f}",
                   f"{speed['librosa']:.3g}", f"{speed['ours'] / speed['librosa']:.1f}x",
                   f"{quality[0]:.4f}", f"{quality[1]:.4f}",
                   f"{100 * (quality[0] / quality[1] - 1):+.1f}%"])
    if FLAGS.profile:
      print(f"\n### batch {batch}: ours, mel -> audio of {clip_secs:g} s clips "
            "(TensorFlow profiler)")
      full.ours()   # Traced before it is profiled.
      print(common.op_profile(full.ours))
      print(f"\n### batch {batch}: librosa mel_to_audio of {mel_to_audio_secs:g} s clips "
            "(cProfile)")
      print(common.python_profile(short.librosa))
  source = f"from {FLAGS.folder}" if FLAGS.folder else "synthesized"
  common.print_table(
      "Mel inversion: x real time and quality (multi-resolution STFT distance to the original)",
      ["stage", "clip s", "batch", "ours s", "ours x RT", "librosa s", "librosa x RT", "speed-up",
       "ours dist", "librosa dist", "quality loss"], rows,
      [f"clips {source}, {iterations} Griffin-Lim iterations, momentum 0.99; "
       f"config {config.name}: {config.sample_rate_hz} Hz, n_fft {config.n_fft}, hop "
       f"{config.hop_length}, {config.n_mels} mels",
       f"median of {repetitions} alternated calls, after one warm-up call of each but "
       "librosa's mel_to_audio (nothing to compile; minutes per call); "
       "targets (mel -> audio): speed-up >= 10x, quality loss <= +5%"])


if __name__ == "__main__":
  app.run(main)
