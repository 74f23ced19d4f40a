"""Pure TensorFlow spectral ops: STFT, log-mel, the inverse mel and Griffin-Lim.

Layouts and units, used throughout the package:
  waveform      float32 [batch, samples], in [-1, 1], at `sample_rate_hz`.
  stft          complex64 [batch, frames, n_fft // 2 + 1].
  magnitude     float32 [batch, frames, n_fft // 2 + 1], linear amplitude.
  mel power     float32 [batch, frames, n_mels], power (|STFT|^2 through the mel matrix).
  log-mel       float32 [batch, frames, n_mels], decibels (10 log10 of mel power).
  model log-mel float32 [batch, frames, n_mels], (dB - db_center) / db_scale.

The STFT is centred as librosa's (`center=True`, zero padding of n_fft // 2 on each
side, periodic Hann window), so a clip of `samples` gives `1 + samples // hop` frames
and frame t is centred on sample t * hop. The mel matrix is `tf.signal`'s (HTK mel
scale, no area normalisation), close to librosa's `filters.mel(htk=True, norm=None)`
but not equal: tf.signal draws each triangle's slopes on the mel scale, librosa in Hz, so
weights (peak 1) differ by up to 0.005 at 80 mels and 0.009 at 40 (test_spectral).

Only core TensorFlow ops are used, so everything here can live inside a SavedModel
that TF Serving's stock server loads.
"""

import dataclasses
import functools
from typing import Optional

import numpy as np
import tensorflow as tf

AMIN = 1e-10  # Smallest power before the log (librosa's power_to_db default).
MAX_DB = 60.0  # Ceiling of log-mels fed to the mel inverse, so that it stays finite.


def stft(waveforms: tf.Tensor, n_fft: int, hop_length: int) -> tf.Tensor:
  """Centred STFT. waveforms [batch, samples] -> complex64 [batch, frames, n_fft//2+1]."""
  pad = n_fft // 2
  padded = tf.pad(waveforms, [[0, 0], [pad, pad]])
  return tf.signal.stft(padded, frame_length=n_fft, frame_step=hop_length, fft_length=n_fft,
                        window_fn=tf.signal.hann_window, pad_end=False)


def istft(stfts: tf.Tensor, n_fft: int, hop_length: int, length: int,
          window_sum: Optional[tf.Tensor] = None) -> tf.Tensor:
  """Inverse of `stft`: complex [batch, frames, bins] -> float32 [batch, length].

  Overlap-add of windowed frames divided by the summed squared window, as librosa's
  `istft`, so the edges are exact too (tf.signal.inverse_stft assumes full overlap).
  `window_sum` (from `squared_window_sum`) may be passed in when many inversions
  share a frame count, as Griffin-Lim's iterations do.
  """
  window = tf.signal.hann_window(n_fft, periodic=True)
  frames = tf.signal.irfft(stfts, fft_length=[n_fft]) * window
  signal = tf.signal.overlap_and_add(frames, hop_length)
  if window_sum is None:
    window_sum = squared_window_sum(tf.shape(stfts)[-2], n_fft, hop_length)
  signal = signal / window_sum
  pad = n_fft // 2
  signal = signal[..., pad:pad + length]
  missing = length - tf.shape(signal)[-1]
  return tf.pad(signal, [[0, 0], [0, tf.maximum(missing, 0)]])


def squared_window_sum(num_frames, n_fft: int, hop_length: int) -> tf.Tensor:
  """The overlap-added squared Hann window of `num_frames` frames, [samples], with
  values below 1e-8 (the uncovered edges) set to 1 so that it can divide."""
  window = tf.signal.hann_window(n_fft, periodic=True)
  window_sum = tf.signal.overlap_and_add(
      tf.tile((window ** 2)[tf.newaxis], [num_frames, 1]), hop_length)
  return tf.where(window_sum > 1e-8, window_sum, tf.ones_like(window_sum))


def mel_matrix(sample_rate_hz: int, n_fft: int, n_mels: int, fmin_hz: float,
               fmax_hz: float) -> tf.Tensor:
  """Linear-to-mel weights, float32 [n_fft // 2 + 1, n_mels] (HTK scale, no norm).

  A constant: computed once per setting, so a graph (a tf.data map, a SavedModel)
  holds the numbers rather than the ops that make them.
  """
  return tf.constant(_mel_matrix_numpy(sample_rate_hz, n_fft, n_mels, fmin_hz, fmax_hz))


@functools.lru_cache(maxsize=16)
def _mel_matrix_numpy(sample_rate_hz, n_fft, n_mels, fmin_hz, fmax_hz) -> np.ndarray:
  with tf.init_scope():  # Eager, even when called while a graph is traced.
    return tf.signal.linear_to_mel_weight_matrix(
        num_mel_bins=n_mels, num_spectrogram_bins=n_fft // 2 + 1, sample_rate=sample_rate_hz,
        lower_edge_hertz=fmin_hz, upper_edge_hertz=fmax_hz).numpy()


def power_spectrogram(waveforms: tf.Tensor, n_fft: int, hop_length: int) -> tf.Tensor:
  """|centred STFT|^2. waveforms [batch, samples] -> float32 [batch, frames, n_fft//2+1].

  Squares the real and imaginary parts rather than squaring `tf.abs`: the complex
  abs (a hypot per bin) cost as much as the FFT itself.
  """
  spectrum = stft(waveforms, n_fft, hop_length)
  return tf.square(tf.math.real(spectrum)) + tf.square(tf.math.imag(spectrum))


def power_to_db(power: tf.Tensor, amin: float = AMIN) -> tf.Tensor:
  """10 log10(max(power, amin)), as librosa's power_to_db(ref=1, top_db=None)."""
  return 10.0 * tf.math.log(tf.maximum(power, amin)) / tf.math.log(10.0)


def db_to_power(db: tf.Tensor) -> tf.Tensor:
  """Inverse of `power_to_db` above its floor."""
  return tf.pow(10.0, db / 10.0)


def nonnegative_mel_inverse(mel_power: tf.Tensor, weights: tf.Tensor,
                            iterations: int = 30) -> tf.Tensor:
  """Non-negative least-squares inverse of the mel matrix.

  mel_power [batch, frames, n_mels], weights [bins, n_mels] ->
  power spectrogram [batch, frames, bins], >= 0, minimising |S W - mel_power|.

  Starts from the pseudo-inverse clipped at zero, then runs multiplicative
  (Lee & Seung) updates S <- S * (M W^T) / ((S W) W^T), which keep S non-negative;
  each costs two [frames, bins] x [bins, n_mels] products. librosa's `mel_to_stft`
  solves the same problem with scipy's L-BFGS-B, which cannot run inside a graph
  (and is slow: minutes for a 30 s clip on two cores).
  """
  pinv = tf.linalg.pinv(weights)                      # [n_mels, bins]
  spec = tf.maximum(tf.einsum("bfm,mk->bfk", mel_power, pinv), 0.0) + 1e-12
  numerator = tf.einsum("bfm,km->bfk", mel_power, weights)
  for _ in range(iterations):
    denominator = tf.einsum("bfm,km->bfk", tf.einsum("bfk,km->bfm", spec, weights),
                            weights) + 1e-12
    spec = spec * numerator / denominator
  return spec


def griffin_lim(magnitude: tf.Tensor, n_fft: int, hop_length: int, length: int,
                iterations=32, momentum: float = 0.99, seed: int = 0) -> tf.Tensor:
  """Fast Griffin-Lim (Perraudin, Balazs & Sondergaard 2013), batched, in-graph.

  magnitude [batch, frames, n_fft//2+1] (linear amplitude) -> waveform [batch, length].
  `iterations` may be a Python int or a scalar int tensor (a SavedModel input).
  Initial phases are uniform random from a stateless generator seeded by `seed`,
  the same for every clip of the batch, so results repeat and do not depend on
  batch composition. Written by hand because tf.signal has no Griffin-Lim; it
  follows librosa's `griffinlim` (same momentum update, same centred STFT).
  """
  magnitude = tf.cast(magnitude, tf.float32)
  # One [frames, bins] draw shared by the batch: a clip decodes to the same audio
  # whichever batch, and whichever place in it, it is decoded in.
  phase = tf.random.stateless_uniform(tf.shape(magnitude)[1:], seed=[seed, 0],
                                      minval=0.0, maxval=2.0 * np.pi)
  angles = tf.complex(tf.cos(phase), tf.sin(phase)) * tf.ones_like(magnitude, tf.complex64)
  complex_magnitude = tf.complex(magnitude, tf.zeros_like(magnitude))
  accel = momentum / (1.0 + momentum)

  # Hoisted out of the loop: the window envelope depends only on the frame count.
  window_sum = squared_window_sum(tf.shape(magnitude)[1], n_fft, hop_length)

  def body(i, angles, rebuilt):
    previous = rebuilt
    inverse = istft(complex_magnitude * angles, n_fft, hop_length, length, window_sum)
    rebuilt = stft(inverse, n_fft, hop_length)
    angles = rebuilt - tf.complex(accel, 0.0) * previous
    # angles / |angles|, with 1/sqrt(re^2 + im^2) instead of the complex abs (a slow
    # hypot per bin); 1e-32 plays the role of librosa's 1e-16 added to |angles|.
    inverse_norm = tf.math.rsqrt(
        tf.square(tf.math.real(angles)) + tf.square(tf.math.imag(angles)) + 1e-32)
    angles = angles * tf.complex(inverse_norm, 0.0)
    return i + 1, angles, rebuilt

  _, angles, _ = tf.while_loop(
      lambda i, *_: i < tf.cast(iterations, tf.int32), body,
      (tf.constant(0), angles, tf.zeros_like(angles)))
  return istft(complex_magnitude * angles, n_fft, hop_length, length, window_sum)


@dataclasses.dataclass(frozen=True)
class MelSpectrogram:
  """Owns the forward (waveform -> model log-mel) and inverse (-> waveform) transforms.

  Built from a `Config` with `MelSpectrogram.from_config(config)`; one object serves
  the model's front end, the losses, Griffin-Lim in generation and the export.
  """

  sample_rate_hz: int
  n_fft: int
  hop_length: int
  n_mels: int
  mel_fmin_hz: float
  mel_fmax_hz: float
  db_floor: float
  db_center: float
  db_scale: float

  @classmethod
  def from_config(cls, config) -> "MelSpectrogram":
    return cls(**{f.name: getattr(config, f.name) for f in dataclasses.fields(cls)})

  @property
  def weights(self) -> tf.Tensor:
    """Mel matrix [n_fft // 2 + 1, n_mels]."""
    return mel_matrix(self.sample_rate_hz, self.n_fft, self.n_mels, self.mel_fmin_hz,
                      self.mel_fmax_hz)

  def log_mel_db(self, waveforms: tf.Tensor) -> tf.Tensor:
    """waveforms [batch, samples] -> log-mel in dB [batch, frames, n_mels], >= db_floor."""
    power = power_spectrogram(tf.cast(waveforms, tf.float32), self.n_fft, self.hop_length)
    mel_power = tf.matmul(power, self.weights)
    return tf.maximum(power_to_db(mel_power), self.db_floor)

  def normalize(self, log_mel_db: tf.Tensor) -> tf.Tensor:
    """dB -> model log-mel, (dB - db_center) / db_scale."""
    return (log_mel_db - self.db_center) / self.db_scale

  def denormalize(self, model_log_mel: tf.Tensor) -> tf.Tensor:
    """Model log-mel -> dB, clipped to [db_floor, MAX_DB] so the inverse stays finite."""
    return tf.clip_by_value(model_log_mel * self.db_scale + self.db_center, self.db_floor, MAX_DB)

  def __call__(self, waveforms: tf.Tensor) -> tf.Tensor:
    """waveforms [batch, samples] -> model log-mel [batch, frames, n_mels]."""
    return self.normalize(self.log_mel_db(waveforms))

  def to_waveform(self, model_log_mel: tf.Tensor, num_samples: int, iterations=32,
                  momentum: float = 0.99, seed: int = 0) -> tf.Tensor:
    """Model log-mel [batch, frames, n_mels] -> waveform [batch, num_samples]."""
    return self.db_to_waveform(self.denormalize(model_log_mel), num_samples, iterations,
                               momentum, seed)

  def db_to_waveform(self, log_mel_db: tf.Tensor, num_samples: int, iterations=32,
                     momentum: float = 0.99, seed: int = 0) -> tf.Tensor:
    """Log-mel in dB [batch, frames, n_mels] -> waveform [batch, num_samples]."""
    power = nonnegative_mel_inverse(db_to_power(log_mel_db), self.weights)
    return griffin_lim(tf.sqrt(power), self.n_fft, self.hop_length, num_samples, iterations,
                       momentum, seed)
