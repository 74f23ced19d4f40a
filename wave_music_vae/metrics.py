"""Evaluation metrics as pure functions over numpy arrays (librosa, scipy, scikit-learn).

Every figure `wave_music_vae_evaluate` reports is computed here; `evaluation.py` only
gathers the arrays. Definitions, with the reasoning behind each, are in docs/metrics.md.

The audio metrics use fixed analysis settings, independent of any model's config,
so figures of models with different front ends stay comparable:
  multi-resolution STFT   FFT sizes 2048/1024/512, hop = size / 4, periodic Hann,
                          centred frames (librosa.stft defaults).
  log-mel frames          80 mels (librosa's Slaney filters, 0 Hz to Nyquist), n_fft 1024,
                          hop 256, power spectrogram, 10 log10(max(power, 1e-10)) dB
                          (power_to_db with ref 1 and no top_db).

Layouts: waveforms are float32 [batch, samples] in [-1, 1]; latent codes are
[clips, z_size]; labels are [clips] strings.
"""

import warnings
from typing import Optional, Sequence, Tuple

import librosa
import numpy as np
import scipy.linalg
from sklearn import decomposition
from sklearn import linear_model
from sklearn import model_selection
from sklearn import pipeline
from sklearn import preprocessing

STFT_FFT_SIZES = (2048, 1024, 512)
LOG_MAGNITUDE_EPS = 1e-5
METRIC_N_MELS = 80
METRIC_N_FFT = 1024
METRIC_HOP_LENGTH = 256
ACTIVE_UNIT_VARIANCE = 0.01


def _batched(waveforms: np.ndarray) -> np.ndarray:
  waveforms = np.asarray(waveforms, np.float32)
  return waveforms[np.newaxis] if waveforms.ndim == 1 else waveforms


def multi_resolution_stft_distance(estimate: np.ndarray, reference: np.ndarray,
                                   fft_sizes: Sequence[int] = STFT_FFT_SIZES,
                                   eps: float = LOG_MAGNITUDE_EPS) -> np.ndarray:
  """Multi-resolution STFT distance of each estimate from its reference (unitless).

  For each FFT size n (hop n / 4), with S = |STFT(reference)| and E = |STFT(estimate)|
  (linear magnitude, [frames, n // 2 + 1] per clip):
    spectral convergence  ||S - E||_F / ||S||_F
    log magnitude         mean |ln(S + eps) - ln(E + eps)|
  the distance is their sum, averaged over the FFT sizes. 0 for identical signals.

  Args:
    estimate, reference: waveforms [batch, samples] (or [samples]), equal shapes.
  Returns:
    float64 [batch], one distance per clip.
  """
  estimate, reference = _batched(estimate), _batched(reference)
  if estimate.shape != reference.shape:
    raise ValueError(f"estimate {estimate.shape} and reference {reference.shape} differ in shape")
  total = np.zeros(len(reference))
  for n_fft in fft_sizes:
    reference_magnitude = np.abs(librosa.stft(reference, n_fft=n_fft, hop_length=n_fft // 4))
    estimate_magnitude = np.abs(librosa.stft(estimate, n_fft=n_fft, hop_length=n_fft // 4))
    axes = (1, 2)
    difference = np.sqrt(np.sum((reference_magnitude - estimate_magnitude) ** 2, axis=axes,
                                dtype=np.float64))
    norm = np.sqrt(np.sum(reference_magnitude ** 2, axis=axes, dtype=np.float64))
    spectral_convergence = difference / np.maximum(norm, eps)
    log_magnitude = np.mean(np.abs(np.log(reference_magnitude + eps)
                                   - np.log(estimate_magnitude + eps)), axis=axes,
                            dtype=np.float64)
    total += spectral_convergence + log_magnitude
  return total / len(fft_sizes)


def paired_difference(scores: np.ndarray, baseline: np.ndarray, confidence: float = 0.95,
                      resamples: int = 10000, seed: int = 0) -> dict:
  """How far `scores` lie from `baseline` on the same clips, with a bootstrap interval.

  Args:
    scores, baseline: one figure per clip for two methods, [clips] each, in the
      same order (the same clips).
    confidence: coverage of the percentile interval, e.g. 0.95.
    resamples: bootstrap resamples of the clips (drawn with replacement, seeded).

  Returns:
    dict with `mean` (mean of scores - baseline, in the figure's unit), `ci_low`,
    `ci_high` (percentile bootstrap interval of that mean), `lower_fraction` (share of
    clips where scores < baseline) and `clips`. Pairing removes what the clips share
    (some clips are hard for every method), so the interval is far narrower than the
    spread of either figure over clips.
  """
  scores, baseline = np.asarray(scores, np.float64), np.asarray(baseline, np.float64)
  if scores.shape != baseline.shape or scores.ndim != 1 or len(scores) < 2:
    raise ValueError(f"need two [clips] arrays of equal length >= 2, got {scores.shape} and "
                     f"{baseline.shape}")
  if not 0.0 < confidence < 1.0:
    raise ValueError(f"confidence must lie in (0, 1). Received: confidence={confidence}")
  difference = scores - baseline
  rng = np.random.default_rng(seed)
  means = difference[rng.integers(0, len(difference), (resamples, len(difference)))].mean(axis=1)
  tail = 100.0 * (1.0 - confidence) / 2.0
  low, high = np.percentile(means, [tail, 100.0 - tail])
  return {"mean": float(difference.mean()), "ci_low": float(low), "ci_high": float(high),
          "confidence": confidence, "lower_fraction": float(np.mean(difference < 0.0)),
          "clips": int(len(difference))}


def log_mel_db(waveforms: np.ndarray, sample_rate_hz: int) -> np.ndarray:
  """The metrics' log-mel frames: waveforms [batch, samples] -> dB [batch, frames, 80].

  librosa.feature.melspectrogram (n_fft 1024, hop 256, 80 Slaney mels, power 2) then
  power_to_db(ref=1, amin=1e-10, top_db=None); frames = 1 + samples // 256.
  """
  power = librosa.feature.melspectrogram(
      y=_batched(waveforms), sr=sample_rate_hz, n_fft=METRIC_N_FFT,
      hop_length=METRIC_HOP_LENGTH, n_mels=METRIC_N_MELS, power=2.0)
  return np.swapaxes(librosa.power_to_db(power, ref=1.0, amin=1e-10, top_db=None), -1, -2)


def log_mel_l1_db(estimate: np.ndarray, reference: np.ndarray, sample_rate_hz: int) -> np.ndarray:
  """Mean |log-mel(estimate) - log-mel(reference)| in dB, per clip (see `log_mel_db`).

  estimate, reference: waveforms [batch, samples] at `sample_rate_hz` -> float64 [batch].
  """
  estimate, reference = _batched(estimate), _batched(reference)
  if estimate.shape != reference.shape:
    raise ValueError(f"estimate {estimate.shape} and reference {reference.shape} differ in shape")
  difference = log_mel_db(estimate, sample_rate_hz) - log_mel_db(reference, sample_rate_hz)
  return np.mean(np.abs(difference), axis=(1, 2), dtype=np.float64)


def gaussian_statistics(features: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
  """Mean [dims] and covariance [dims, dims] (float64) of features [..., dims].

  All leading axes are pooled: log-mel frames [clips, frames, mels] give the
  statistics of every frame of every clip.
  """
  features = np.asarray(features, np.float64)
  rows = features.reshape(-1, features.shape[-1])
  if len(rows) < 2:
    raise ValueError(f"need at least 2 feature vectors for a covariance, got {len(rows)}")
  return rows.mean(axis=0), np.cov(rows, rowvar=False)


def frechet_distance(mean1: np.ndarray, covariance1: np.ndarray, mean2: np.ndarray,
                     covariance2: np.ndarray) -> float:
  """Fréchet distance between N(mean1, covariance1) and N(mean2, covariance2).

  ||mean1 - mean2||^2 + tr(C1 + C2 - 2 (C1 C2)^(1/2)), in the features' units squared
  (dB^2 for log-mel frames). The matrix square root is scipy.linalg.sqrtm; imaginary
  parts that rounding leaves on it are dropped (a large one raises, it would mean the
  covariances are not positive semi-definite), and a singular product is regularised
  by adding 1e-6 to both diagonals, as the reference FID code does. Tiny negative
  results of rounding are clipped to 0.
  """
  mean1, mean2 = np.asarray(mean1, np.float64), np.asarray(mean2, np.float64)
  covariance1 = np.asarray(covariance1, np.float64)
  covariance2 = np.asarray(covariance2, np.float64)
  with warnings.catch_warnings():  # Singular products are expected; handled below.
    warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
    root = scipy.linalg.sqrtm(covariance1 @ covariance2)
    if not np.all(np.isfinite(root)):
      offset = 1e-6 * np.eye(len(covariance1))
      root = scipy.linalg.sqrtm((covariance1 + offset) @ (covariance2 + offset))
  if np.iscomplexobj(root):
    largest_imaginary = np.max(np.abs(root.imag))
    if largest_imaginary > 1e-3 * max(np.max(np.abs(root.real)), 1.0):
      raise ValueError(f"covariance square root has an imaginary part of {largest_imaginary:.3g}:"
                       " the covariances are not positive semi-definite")
    root = root.real
  distance = (np.sum((mean1 - mean2) ** 2)
              + np.trace(covariance1) + np.trace(covariance2) - 2.0 * np.trace(root))
  return float(max(distance, 0.0))


def kl_per_dimension(mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
  """KL(N(mu, sigma^2) || N(0, 1)) per latent dimension, averaged over clips, in nats.

  mu, sigma [clips, z_size] -> float64 [z_size]:
  0.5 * mean over clips of (mu^2 + sigma^2 - 1 - 2 ln sigma), with sigma taken as at
  least 1e-8 in the log, so that a sigma that underflowed to 0 gives a large, finite KL
  (the training loss, `losses.kl_divergence`, adds 1e-8 for the same reason). Sums to
  the KL of the whole (diagonal) posterior.
  """
  mu, sigma = np.asarray(mu, np.float64), np.asarray(sigma, np.float64)
  return 0.5 * np.mean(mu ** 2 + sigma ** 2 - 1.0 - 2.0 * np.log(np.maximum(sigma, 1e-8)),
                       axis=0)


def active_units(mu: np.ndarray, threshold: float = ACTIVE_UNIT_VARIANCE) -> int:
  """Number of latent dimensions whose posterior mean varies over the data.

  mu [clips, z_size]: a dimension is active when the variance of its mu over the
  clips exceeds `threshold` (0.01, Burda et al. 2016), i.e. the encoder uses it.
  """
  return int(np.sum(np.var(np.asarray(mu, np.float64), axis=0) > threshold))


def _distances_to(path: np.ndarray, anchor: np.ndarray) -> np.ndarray:
  """Mean |x - anchor| of each step of path [steps, ...] -> [steps]."""
  return np.mean(np.abs(path - anchor).reshape(len(path), -1), axis=1)


def endpoint_distances(path: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
  """Distances of each step of a decoded path to its two ends.

  path [steps, ...] (e.g. decoded log-mels [steps, frames, mels] in dB) ->
  (to_start [steps], to_end [steps]): the mean absolute difference, in the path's units.
  """
  path = np.asarray(path, np.float64)
  return _distances_to(path, path[0]), _distances_to(path, path[-1])


def is_monotonic_path(path: np.ndarray) -> bool:
  """True when, step by step, the distance to the start never falls and to the end never rises.

  path [steps, ...]: the decoded steps of one interpolation, in order.
  """
  to_start, to_end = endpoint_distances(path)
  return bool(np.all(np.diff(to_start) >= 0.0) and np.all(np.diff(to_end) <= 0.0))


def step_ratio(path: np.ndarray) -> float:
  """Largest step over the mean step along a decoded path (1.0 = evenly spaced).

  path [steps, ...]; a step is the mean absolute difference between consecutive
  elements. A path that does not move at all counts as even (1.0).
  """
  path = np.asarray(path, np.float64)
  steps = np.mean(np.abs(np.diff(path, axis=0)).reshape(len(path) - 1, -1), axis=1)
  mean_step = np.mean(steps)
  return float(np.max(steps) / mean_step) if mean_step > 0 else 1.0


def cycle_errors(z: np.ndarray, mu_of_decoded: np.ndarray) -> np.ndarray:
  """Euclidean distance from each code to the encoder mean of its decoded audio.

  z [points, z_size]: codes that were decoded (and inverted to audio);
  mu_of_decoded [points, z_size]: the encoder's mu of that audio. -> float64 [points],
  in latent units (the prior's standard deviations).
  """
  return np.linalg.norm(np.asarray(mu_of_decoded, np.float64) - np.asarray(z, np.float64), axis=1)


def fit_pca(features: np.ndarray, num_components: int, seed: int = 0) -> decomposition.PCA:
  """sklearn PCA fitted on features [clips, ...] (flattened per clip), `num_components` kept.

  `num_components` is capped at min(clips, features per clip), the most PCA can fit.
  """
  features = np.asarray(features, np.float64)
  rows = features.reshape(len(features), -1)
  num_components = min(num_components, *rows.shape)
  return decomposition.PCA(n_components=num_components, random_state=seed).fit(rows)


def pca_reconstruct(pca: decomposition.PCA, features: np.ndarray) -> np.ndarray:
  """Projects features [clips, ...] onto the PCA's components and back: same shape."""
  features = np.asarray(features, np.float64)
  rows = features.reshape(len(features), -1)
  return pca.inverse_transform(pca.transform(rows)).reshape(features.shape)


def _probe() -> pipeline.Pipeline:
  """Standardised features into an L2-regularised (C = 1) multinomial logistic regression."""
  return pipeline.make_pipeline(preprocessing.StandardScaler(),
                                linear_model.LogisticRegression(max_iter=2000))


def probe_folds(labels: np.ndarray, folds: int = 5, groups: Optional[np.ndarray] = None) -> int:
  """Folds a stratified cross-validation of `labels` can use: min(folds, rarest label's count),
  counting clips, or with `groups` (the song of each clip) the label's distinct songs.

  Raises ValueError when there are fewer than 2 labels, or a label has a single clip (song).
  """
  labels = np.asarray(labels)
  classes, counts = np.unique(labels, return_counts=True)
  if len(counts) < 2:
    raise ValueError(f"the probe needs at least 2 labels, found {len(counts)}")
  unit = "clips"
  if groups is not None:
    groups = np.asarray(groups)
    counts = np.array([len(set(groups[labels == label])) for label in classes])
    unit = "songs"
  if counts.min() < 2:
    raise ValueError(f"the probe needs at least 2 {unit} of every label")
  return int(min(folds, counts.min()))


def cross_validated_accuracy(features: np.ndarray, labels: np.ndarray, folds: int = 5,
                             seed: int = 0, groups: Optional[np.ndarray] = None
                             ) -> Tuple[float, float]:
  """Stratified k-fold accuracy of a logistic-regression probe: (mean, std) over folds.

  features [clips, dims]; labels [clips]; the folds (see `probe_folds`) are shuffled
  with `seed`. With `groups` [clips] (each clip's song), all clips of a song fall in one
  fold, so the probe is never scored on a song it was fitted on (scikit-learn's
  StratifiedGroupKFold). Accuracy is the share of clips whose label is predicted right.
  """
  if groups is None:
    splitter = model_selection.StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
  else:
    splitter = model_selection.StratifiedGroupKFold(n_splits=folds, shuffle=True,
                                                    random_state=seed)
  scores = model_selection.cross_val_score(_probe(), np.asarray(features, np.float64),
                                           np.asarray(labels), groups=groups, cv=splitter)
  return float(np.mean(scores)), float(np.std(scores))


def held_out_accuracy(train_features: np.ndarray, train_labels: np.ndarray,
                      test_features: np.ndarray, test_labels: np.ndarray) -> float:
  """Accuracy on test clips of a logistic-regression probe fitted on the train clips.

  train_features [n, dims], train_labels [n]; test_features [m, dims], test_labels [m].
  """
  probe = _probe().fit(np.asarray(train_features, np.float64), np.asarray(train_labels))
  return float(probe.score(np.asarray(test_features, np.float64), np.asarray(test_labels)))


def majority_accuracy(train_labels: np.ndarray, test_labels: np.ndarray) -> float:
  """Chance level: accuracy on `test_labels` of always guessing the commonest train label."""
  values, counts = np.unique(np.asarray(train_labels), return_counts=True)
  return float(np.mean(np.asarray(test_labels) == values[np.argmax(counts)]))
