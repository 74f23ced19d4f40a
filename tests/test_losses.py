"""Loss terms against closed forms: L1 reconstruction, Gaussian KL, free nats, beta ramp."""

import numpy as np
import tensorflow as tf

from wave_music_vae import losses


def test_reconstruction_is_summed_l1_per_example():
  target = np.zeros([2, 3, 4], np.float32)
  predicted = np.ones([2, 3, 4], np.float32) * np.array([0.5, -2.0], np.float32)[:, None, None]
  np.testing.assert_allclose(losses.reconstruction_loss(target, predicted), [6.0, 24.0])


def test_kl_matches_closed_form():
  rng = np.random.default_rng(0)
  mu = rng.normal(size=[3, 5]).astype(np.float32)
  sigma = rng.uniform(0.2, 2.0, size=[3, 5]).astype(np.float32)
  expected = 0.5 * np.sum(mu ** 2 + sigma ** 2 - 1 - np.log(sigma ** 2), axis=-1)
  np.testing.assert_allclose(losses.kl_divergence(mu, sigma), expected, rtol=1e-5)
  np.testing.assert_allclose(losses.kl_divergence(np.zeros([1, 4]), np.ones([1, 4])), [0.0],
                             atol=1e-6)


def test_free_nats_are_not_penalised():
  kl = tf.constant([0.5, 2.0, 10.0])
  np.testing.assert_allclose(losses.kl_cost(kl, 2.0), [0.0, 0.0, 8.0])


def test_beta_ramps_from_zero_to_max():
  assert float(losses.beta(0, 0.2, 0.99)) == 0.0
  assert abs(float(losses.beta(100000, 0.2, 0.99)) - 0.2) < 1e-6
  assert 0.0 < float(losses.beta(10, 0.2, 0.99)) < float(losses.beta(100, 0.2, 0.99)) < 0.2
