"""Each metric on cases whose answer is known: identity, noise, exact scalings, constructed data."""

import numpy as np
import pytest

from conftest import SAMPLE_RATE_HZ, synth_song
from wave_music_vae import metrics


@pytest.fixture(scope="module")
def clips():
  """Two 1 s synthesized clips, float32 [2, 22050]."""
  return np.stack([synth_song(1.0, seed=1), synth_song(1.0, base_hz=330.0, seed=2)])


def test_mr_stft_is_zero_against_itself_and_large_against_noise(clips):
  assert np.allclose(metrics.multi_resolution_stft_distance(clips, clips), 0.0)
  noise = np.random.default_rng(0).uniform(-0.4, 0.4, clips.shape).astype(np.float32)
  against_noise = metrics.multi_resolution_stft_distance(noise, clips)
  assert against_noise.shape == (2,)
  assert np.all(against_noise > 2.0)


def test_mr_stft_of_a_doubled_signal_is_one_plus_log_two():
  # |2S - S| / |S| = 1 exactly; |ln(2S + eps) - ln(S + eps)| = ln 2 wherever S >> eps,
  # which holds in (nearly) every bin of white noise.
  noise = np.random.default_rng(2).uniform(-0.3, 0.3, (2, SAMPLE_RATE_HZ)).astype(np.float32)
  distance = metrics.multi_resolution_stft_distance(2.0 * noise, noise)
  np.testing.assert_allclose(distance, 1.0 + np.log(2.0), rtol=0.02)


def test_log_mel_l1_is_zero_against_itself_and_six_db_for_double_amplitude(clips):
  assert np.allclose(metrics.log_mel_l1_db(clips, clips, SAMPLE_RATE_HZ), 0.0)
  noise = np.random.default_rng(1).uniform(-0.4, 0.4, clips.shape).astype(np.float32)
  assert np.all(metrics.log_mel_l1_db(noise, clips, SAMPLE_RATE_HZ) > 10.0)
  # Doubling amplitude quadruples power: 10 log10(4) = 6.02 dB in every frame and mel
  # above the -100 dB floor, so on noise (no bin near the floor) exactly that.
  np.testing.assert_allclose(metrics.log_mel_l1_db(2.0 * noise, noise, SAMPLE_RATE_HZ),
                             10.0 * np.log10(4.0), rtol=1e-4)


def test_log_mel_frames_follow_the_documented_settings(clips):
  frames = metrics.log_mel_db(clips, SAMPLE_RATE_HZ)
  assert frames.shape == (2, 1 + clips.shape[1] // metrics.METRIC_HOP_LENGTH, metrics.METRIC_N_MELS)
  # amin 1e-10 puts silence at -100 dB; without top_db nothing is clipped 80 dB under the peak.
  half_silent = clips.copy()
  half_silent[:, SAMPLE_RATE_HZ // 2:] = 0.0
  frames = metrics.log_mel_db(half_silent, SAMPLE_RATE_HZ)
  np.testing.assert_allclose(frames[:, -10:], -100.0, atol=1e-3)
  assert frames.max() - frames.min() > 100.0


def test_frechet_distance_of_a_set_to_itself_is_zero(clips):
  statistics = metrics.gaussian_statistics(metrics.log_mel_db(clips, SAMPLE_RATE_HZ))
  assert metrics.frechet_distance(*statistics, *statistics) == pytest.approx(0.0, abs=1e-6)


def test_frechet_distance_matches_the_closed_form_for_known_gaussians():
  mean1, mean2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
  variances1, variances2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 1.0])
  # Diagonal covariances: |m1 - m2|^2 + sum (sqrt(v1) - sqrt(v2))^2 = 5 + (1 + 1 + 4).
  expected = 5.0 + np.sum((np.sqrt(variances1) - np.sqrt(variances2)) ** 2)
  assert metrics.frechet_distance(mean1, np.diag(variances1), mean2,
                                  np.diag(variances2)) == pytest.approx(expected)
  shifted = metrics.gaussian_statistics(np.random.default_rng(0).normal(size=(500, 4)) + 3.0)
  centred = (shifted[0] - 3.0, shifted[1])
  assert metrics.frechet_distance(*shifted, *centred) == pytest.approx(4 * 9.0)


def test_frechet_distance_stays_finite_for_singular_covariances():
  rank_one = np.outer([1.0, 2.0, 0.0], [1.0, 2.0, 0.0])
  distance = metrics.frechet_distance(np.zeros(3), rank_one, np.ones(3), np.zeros((3, 3)))
  assert np.isfinite(distance) and distance == pytest.approx(3.0 + 5.0, rel=1e-3)


def test_kl_per_dimension_of_known_posteriors():
  mu = np.array([[0.0, 1.0], [0.0, -1.0]])
  sigma = np.array([[1.0, 1.0], [1.0, 1.0]])
  np.testing.assert_allclose(metrics.kl_per_dimension(mu, sigma), [0.0, 0.5])
  # sigma = e^-1: 0.5 (e^-2 - 1 + 2) per clip.
  sigma = np.full((3, 1), np.exp(-1.0))
  np.testing.assert_allclose(metrics.kl_per_dimension(np.zeros((3, 1)), sigma),
                             [0.5 * (np.exp(-2.0) + 1.0)])
  # A sigma that underflowed to 0 gives a large but finite KL: 0.5 (0 - 1 - 2 ln 1e-8).
  np.testing.assert_allclose(metrics.kl_per_dimension(np.zeros((1, 1)), np.zeros((1, 1))),
                             [0.5 * (-1.0 - 2.0 * np.log(1e-8))])


def test_active_units_counts_dimensions_whose_mu_varies():
  rng = np.random.default_rng(0)
  mu = np.concatenate([rng.normal(0.0, 1.0, (400, 3)),      # variance ~1: active
                       rng.normal(5.0, 0.03, (400, 2)),     # variance ~0.0009: not
                       np.full((400, 1), -2.0)], axis=1)    # constant: not
  assert metrics.active_units(mu) == 3
  assert metrics.active_units(mu, threshold=1e-4) == 5


def test_interpolation_metrics_on_constructed_paths():
  even = np.linspace(0.0, 1.0, 7)[:, np.newaxis] * np.ones((7, 5))
  assert metrics.is_monotonic_path(even)
  assert metrics.step_ratio(even) == pytest.approx(1.0)
  to_start, to_end = metrics.endpoint_distances(even)
  np.testing.assert_allclose(to_start, np.linspace(0.0, 1.0, 7))
  np.testing.assert_allclose(to_end, np.linspace(1.0, 0.0, 7))
  detour = even.copy()
  detour[3] = detour[1]          # steps back toward the start half way
  assert not metrics.is_monotonic_path(detour)
  uneven = np.array([[0.0], [1.0], [2.0], [6.0]])   # steps 1, 1, 4: largest 4 / mean 2
  assert metrics.step_ratio(uneven) == pytest.approx(2.0)
  assert metrics.step_ratio(np.zeros((7, 3))) == 1.0


def test_cycle_errors_are_euclidean_distances():
  z = np.array([[0.0, 0.0], [1.0, 1.0]])
  mu = np.array([[3.0, 4.0], [1.0, 1.0]])
  np.testing.assert_allclose(metrics.cycle_errors(z, mu), [5.0, 0.0])


def test_pca_with_all_components_reconstructs_its_training_clips():
  log_mels = np.random.default_rng(0).normal(-40.0, 20.0, (12, 9, 6))
  full = metrics.fit_pca(log_mels, num_components=100)   # capped at 12 clips
  assert full.n_components_ == 12
  np.testing.assert_allclose(metrics.pca_reconstruct(full, log_mels), log_mels, atol=1e-8)
  two = metrics.fit_pca(log_mels, num_components=2)
  error = np.mean(np.abs(metrics.pca_reconstruct(two, log_mels) - log_mels))
  assert error > 1.0


def test_probe_is_accurate_on_separable_features_and_at_chance_on_shuffled_labels():
  rng = np.random.default_rng(0)
  labels = np.repeat(["a", "b"], 100)
  features = rng.normal(size=(200, 4))
  features[:, 0] += np.where(labels == "a", -3.0, 3.0)
  accuracy, _ = metrics.cross_validated_accuracy(features, labels, seed=0)
  assert accuracy > 0.95
  shuffled = rng.permutation(labels)
  chance_accuracy, _ = metrics.cross_validated_accuracy(features, shuffled, seed=0)
  assert abs(chance_accuracy - 0.5) < 0.15
  assert metrics.held_out_accuracy(features[::2], labels[::2], features[1::2], labels[1::2]) > 0.95
  assert metrics.majority_accuracy(np.array(["a", "a", "b"]), np.array(["a", "b"])) == 0.5


def test_folds_by_song_stop_a_probe_scoring_songs_it_was_fitted_on():
  """Labels unrelated to sound, but each song's clips alike: split by clip, the probe
  recognises songs it saw and scores high; split by song it is at chance, as it should be."""
  rng = np.random.default_rng(1)
  songs = np.repeat(np.arange(20), 10)                    # 20 songs of 10 clips
  song_labels = rng.permutation(np.repeat(["a", "b"], 10))
  labels = song_labels[songs]
  features = rng.normal(size=(20, 16))[songs] + 0.1 * rng.normal(size=(200, 16))
  by_clip, _ = metrics.cross_validated_accuracy(features, labels, 5, seed=0)
  by_song, _ = metrics.cross_validated_accuracy(features, labels, 5, seed=0, groups=songs)
  assert by_clip > 0.95
  assert by_song < 0.75


def test_probe_folds_by_song_count_songs_not_clips():
  labels = np.array(["a"] * 6 + ["b"] * 6)
  assert metrics.probe_folds(labels, groups=np.array([1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6])) == 3
  with pytest.raises(ValueError, match="2 songs of every label"):
    metrics.probe_folds(labels, groups=np.array([1] * 6 + [2, 2, 3, 3, 4, 4]))


def test_probe_folds_refuses_a_single_label_and_caps_at_the_rarest_label():
  assert metrics.probe_folds(np.array(["a"] * 9 + ["b"] * 3)) == 3
  with pytest.raises(ValueError, match="at least 2 labels"):
    metrics.probe_folds(np.array(["a"] * 5))
  with pytest.raises(ValueError, match="2 clips of every label"):
    metrics.probe_folds(np.array(["a"] * 5 + ["b"]))


def test_paired_difference_of_identical_scores_is_exactly_zero():
  scores = np.random.default_rng(3).uniform(1.0, 3.0, 40)
  paired = metrics.paired_difference(scores, scores)
  assert (paired["mean"], paired["ci_low"], paired["ci_high"]) == (0.0, 0.0, 0.0)
  assert paired["lower_fraction"] == 0.0 and paired["clips"] == 40


def test_paired_difference_sees_a_small_shift_that_the_spread_over_clips_hides():
  # Clips differ by far more (std 0.5) than the methods do (0.02 on every clip, plus small
  # per-clip noise): pairing cancels the clip effect, so the interval excludes zero.
  rng = np.random.default_rng(4)
  baseline = rng.normal(2.0, 0.5, 64)
  scores = baseline - 0.02 + rng.normal(0.0, 0.01, 64)
  paired = metrics.paired_difference(scores, baseline, seed=1)
  assert paired["mean"] == pytest.approx(np.mean(scores - baseline))
  assert paired["ci_low"] < paired["mean"] < paired["ci_high"] < 0.0
  assert paired["ci_high"] - paired["ci_low"] < 0.01
  assert paired["lower_fraction"] > 0.9


def test_paired_difference_interval_covers_zero_for_pure_noise():
  rng = np.random.default_rng(5)
  baseline = rng.normal(2.0, 0.5, 200)
  paired = metrics.paired_difference(baseline + rng.normal(0.0, 0.1, 200), baseline, seed=2)
  assert paired["ci_low"] < 0.0 < paired["ci_high"]


def test_paired_difference_rejects_unpaired_input():
  with pytest.raises(ValueError, match="equal length"):
    metrics.paired_difference(np.zeros(3), np.zeros(4))
  with pytest.raises(ValueError, match="confidence"):
    metrics.paired_difference(np.zeros(3), np.zeros(3), confidence=1.5)
