"""The VAE objective: log-mel reconstruction + beta * KL above free nats (MusicVAE).

Reconstruction is the L1 distance between target and decoded model log-mels,
summed over frames and mel bins: the negative log-likelihood (up to a constant) of
a Laplace distribution of unit scale, in nats per clip, so it adds to the KL in
the same unit as in MusicVAE. L1 on log magnitudes rather than L2 because it is the
distance that spectral losses use (DDSP's multi-scale loss): it does not let a few
loud errors dominate, and its gradient does not fade as frames get close, so
fine spectral detail keeps being learnt instead of blurred.

KL is summed over z dimensions, in nats per clip; `free_nats` nats are not
penalised (MusicVAE's `free_bits` hparam, which it converts to nats as
free_bits * ln 2; here the config holds nats directly), and beta ramps up as
beta(step) = (1 - beta_rate ** step) * max_beta.
"""

import tensorflow as tf


def reconstruction_loss(target: tf.Tensor, predicted: tf.Tensor) -> tf.Tensor:
  """[batch, frames, n_mels] x2 -> [batch] summed L1 (nats of a unit Laplace)."""
  return tf.reduce_sum(tf.abs(tf.cast(target, tf.float32) - tf.cast(predicted, tf.float32)),
                       axis=[1, 2])


def kl_divergence(mu: tf.Tensor, sigma: tf.Tensor) -> tf.Tensor:
  """KL(N(mu, sigma^2) || N(0, I)) per example: [batch, z_size] x2 -> [batch] nats."""
  mu = tf.cast(mu, tf.float32)
  sigma = tf.cast(sigma, tf.float32)
  return 0.5 * tf.reduce_sum(tf.square(mu) + tf.square(sigma) - 1.0
                             - 2.0 * tf.math.log(sigma + 1e-8), axis=-1)


def kl_cost(kl: tf.Tensor, free_nats: float) -> tf.Tensor:
  """KL above the free nats, never negative: [batch] -> [batch]."""
  return tf.maximum(kl - free_nats, 0.0)


def beta(step, max_beta: float, beta_rate: float) -> tf.Tensor:
  """MusicVAE's KL weight at `step`: (1 - beta_rate ** step) * max_beta."""
  step = tf.cast(step, tf.float32)
  return (1.0 - tf.pow(beta_rate, step)) * max_beta


def vae_losses(target, predicted, mu, sigma, step, config) -> dict:
  """Every loss term, each a scalar averaged over the batch.

  Returns dict with `per_example_loss` ([batch], what is minimised: the training
  loop averages it over the global batch), `loss` (its batch mean), `reconstruction_loss`, `kl_loss`
  (raw KL), `kl_cost` (KL above the free nats), `kl_bits` (KL in bits), `beta`, and
  `log_mel_l1_db` (mean |error| in dB, for people).
  """
  recon = reconstruction_loss(target, predicted)
  kl = kl_divergence(mu, sigma)
  cost = kl_cost(kl, config.free_nats)
  weight = beta(step, config.max_beta, config.beta_rate)
  per_example = recon + weight * cost
  elements = tf.cast(tf.reduce_prod(tf.shape(target)[1:]), tf.float32)
  return {
      "per_example_loss": per_example,
      "loss": tf.reduce_mean(per_example),
      "reconstruction_loss": tf.reduce_mean(recon),
      "kl_loss": tf.reduce_mean(kl),
      "kl_cost": tf.reduce_mean(cost),
      "kl_bits": tf.reduce_mean(kl) / tf.math.log(2.0),
      "beta": weight,
      "log_mel_l1_db": tf.reduce_mean(recon) / elements * config.db_scale,
  }
