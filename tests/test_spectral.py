"""tf.signal log-mel against librosa, STFT round trip, the mel inverse and Griffin-Lim."""

import librosa
import numpy as np
import pytest
import tensorflow as tf

from wave_music_vae import spectral
from wave_music_vae.config import load_config

from conftest import synth_song


@pytest.fixture(scope="module")
def mel():
  return spectral.MelSpectrogram.from_config(load_config("gtzan"))


def test_log_mel_matches_librosa(mel):
  y = synth_song(2.0, seed=3)
  ours = mel.log_mel_db(y[np.newaxis]).numpy()[0]
  power = librosa.feature.melspectrogram(
      y=y, sr=mel.sample_rate_hz, n_fft=mel.n_fft, hop_length=mel.hop_length, n_mels=mel.n_mels,
      fmin=mel.mel_fmin_hz, fmax=mel.mel_fmax_hz, htk=True, norm=None, center=True,
      pad_mode="constant", power=2.0)
  reference = np.maximum(librosa.power_to_db(power, ref=1.0, amin=1e-10, top_db=None),
                         mel.db_floor).T
  assert ours.shape == reference.shape == (1 + len(y) // mel.hop_length, mel.n_mels)
  loud = reference > reference.max() - 60.0  # where there is signal, not the floor
  assert np.median(np.abs(ours - reference)[loud]) < 0.05
  assert np.percentile(np.abs(ours - reference)[loud], 99) < 0.5


@pytest.mark.parametrize("n_mels,bound", [(80, 0.005), (40, 0.009)])
def test_mel_matrix_is_close_to_librosa_htk(n_mels, bound):
  """As the module says: librosa's HTK triangles to within `bound` (peak weight 1)."""
  ours = spectral.mel_matrix(22050, 1024, n_mels, 0.0, 11025.0).numpy()
  reference = librosa.filters.mel(sr=22050, n_fft=1024, n_mels=n_mels, fmin=0.0, fmax=11025.0,
                                  htk=True, norm=None).T
  assert ours.shape == reference.shape
  assert np.abs(ours - reference).max() < bound


def test_stft_round_trip_is_exact():
  y = synth_song(1.0, seed=1)[np.newaxis]
  back = spectral.istft(spectral.stft(y, 1024, 256), 1024, 256, y.shape[1]).numpy()
  np.testing.assert_allclose(back, y, atol=1e-5)


def test_normalize_inverts(mel):
  db = tf.constant([[-90.0, -40.0, 0.0, 20.0]])
  np.testing.assert_allclose(mel.denormalize(mel.normalize(db)), db, atol=1e-4)


def test_mel_inverse_is_nonnegative_and_fits(mel):
  y = synth_song(1.0, seed=2)[np.newaxis]
  power = tf.square(tf.abs(spectral.stft(y, mel.n_fft, mel.hop_length)))
  mel_power = tf.matmul(power, mel.weights)
  pinv_only = spectral.nonnegative_mel_inverse(mel_power, mel.weights, iterations=0)
  refined = spectral.nonnegative_mel_inverse(mel_power, mel.weights, iterations=30)
  assert float(tf.reduce_min(refined)) >= 0.0
  error = lambda s: float(tf.norm(tf.matmul(s, mel.weights) - mel_power))
  assert error(refined) < error(pinv_only)


def _griffin_lim_error_db(mel, y, iterations):
  db = mel.log_mel_db(y)
  audio = mel.db_to_waveform(db, y.shape[1], iterations)
  assert audio.shape == y.shape
  loud = db > tf.reduce_max(db) - 60.0
  return float(tf.reduce_mean(tf.boolean_mask(tf.abs(mel.log_mel_db(audio) - db), loud)))


def test_griffin_lim_reproduces_the_mel_and_improves_with_iterations(mel):
  y = synth_song(2.0, seed=4)[np.newaxis]
  few = _griffin_lim_error_db(mel, y, 4)
  many = _griffin_lim_error_db(mel, y, 32)
  # Mean |log-mel error| in dB where there is signal. With the true STFT magnitude
  # Griffin-Lim reaches about 1 dB here; the mel inverse (a least-squares fit in
  # linear power) costs the rest. Noise of the same loudness is over 20 dB off.
  assert many < 5.5, many
  assert many < few


def test_griffin_lim_is_batched_and_repeatable(mel):
  y = np.stack([synth_song(1.0, seed=s) for s in (5, 6)])
  db = mel.log_mel_db(y)
  first = mel.db_to_waveform(db, y.shape[1], 8).numpy()
  again = mel.db_to_waveform(db, y.shape[1], 8).numpy()
  single = mel.db_to_waveform(db[1:], y.shape[1], 8).numpy()
  np.testing.assert_array_equal(first, again)
  assert first.shape == (2, y.shape[1]) and np.all(np.isfinite(first))
  assert np.abs(single[0]).max() > 0.01
  # A clip's result does not depend on the batch it is decoded in.
  np.testing.assert_allclose(single[0], first[1], atol=1e-6)


def test_griffin_lim_runs_inside_tf_function_with_tensor_iterations(mel):
  y = synth_song(1.0, seed=7)[np.newaxis]
  db = mel.log_mel_db(y)

  @tf.function(input_signature=[tf.TensorSpec([None, None, mel.n_mels]), tf.TensorSpec([], tf.int32)])
  def invert(log_mel_db, iterations):
    return mel.db_to_waveform(log_mel_db, y.shape[1], iterations)

  assert invert(db, tf.constant(3)).shape == y.shape


def test_log_mel_is_the_same_traced_as_eager(mel):
  """The mel matrix is computed eagerly even when first asked for inside a trace."""
  y = synth_song(1.0, seed=4)[np.newaxis]
  traced = tf.function(mel.log_mel_db, input_signature=[tf.TensorSpec([None, None], tf.float32)])
  np.testing.assert_allclose(traced(y), mel.log_mel_db(y), atol=1e-4)
  np.testing.assert_allclose(
      spectral.power_spectrogram(y, mel.n_fft, mel.hop_length),
      tf.square(tf.abs(spectral.stft(y, mel.n_fft, mel.hop_length))), rtol=1e-4, atol=1e-6)
