"""Semi-amortised encoding: refine the encoder's mean by gradient steps on the decoder's error.

The encoder is amortised: one pass predicts mu for any clip, and on music it never
saw that prediction is not the code the decoder reconstructs best (on the shipped
checkpoint, fitting z directly lowers the held-out log-mel error from about 6 to
under 5 dB; `checkpoints/diagnostics/optimise_z.py`). Refinement starts from mu and
takes `steps` Adam steps on z (Kim et al. 2018, "Semi-Amortized Variational
Autoencoders"), minimising per clip

  sum over frames and mel bins |decode(z) - log_mel(clip)|  +  prior_weight * |z|^2 / 2

the training objective's reconstruction term (nats of a unit Laplace) plus the prior's
negative log-density, weighted as training weighted the KL (`max_beta`): the code
the trained model itself prefers for that clip. Clips are refined independently
(Adam scales each coordinate on its own, and the decoder has no batch coupling at
inference), so a clip's code does not depend on the batch it came in.

Refined codes reconstruct better but move away from the prior (their norm grows),
so they suit `reconstruct` and `tweak` more than sampling-like uses.

Adam is written out here rather than taken from `keras.optimizers`: it has to run
inside one traced function with the step count as a tensor (a `tf.while_loop`), so
that the SavedModel export can serve it with core TensorFlow ops and no optimizer
variables to save or reset between requests.
"""

import tensorflow as tf

from wave_music_vae import losses

MAX_STEPS = 1000                 # Most steps one call may ask for (export, commands).
DEFAULT_LEARNING_RATE = 0.05     # Adam's step size, in units of z (the prior's std is 1).
ADAM_BETA_1 = 0.9
ADAM_BETA_2 = 0.999
ADAM_EPSILON = 1e-7


def refinement_objective(decode, target_log_mel: tf.Tensor, z: tf.Tensor,
                         prior_weight: float) -> tf.Tensor:
  """The per-clip objective of the module docstring: -> [batch] (nats).

  Args:
    decode: z [batch, z_size] -> model log-mel [batch, frames, n_mels].
    target_log_mel: the clips' model log-mel, [batch, frames, n_mels].
    z: codes [batch, z_size].
    prior_weight: weight of |z|^2 / 2.
  """
  return (losses.reconstruction_loss(target_log_mel, decode(z))
          + prior_weight * 0.5 * tf.reduce_sum(tf.square(z), axis=-1))


def refine_latents(decode, target_log_mel: tf.Tensor, initial_z: tf.Tensor, steps,
                   learning_rate: float = DEFAULT_LEARNING_RATE,
                   prior_weight: float = 0.0) -> tf.Tensor:
  """Adam steps on z from `initial_z` towards the codes that best decode to the targets.

  Args:
    decode: z [batch, z_size] -> model log-mel [batch, frames, n_mels] (inference mode).
    target_log_mel: [batch, frames, n_mels], the clips' model log-mel.
    initial_z: [batch, z_size], usually the encoder's mu.
    steps: number of Adam steps (int or scalar int32 tensor); 0 returns `initial_z`.
    learning_rate: Adam's step size.
    prior_weight: weight of the prior term |z|^2 / 2 (the config's `max_beta`).

  Returns:
    float32 [batch, z_size], the refined codes.
  """
  target = tf.cast(target_log_mel, tf.float32)
  z = tf.cast(initial_z, tf.float32)
  steps = tf.cast(steps, tf.int32)

  def adam_step(step, z, first_moment, second_moment):
    with tf.GradientTape() as tape:
      tape.watch(z)
      loss = tf.reduce_sum(refinement_objective(decode, target, z, prior_weight))
    gradient = tape.gradient(loss, z)
    first_moment = ADAM_BETA_1 * first_moment + (1.0 - ADAM_BETA_1) * gradient
    second_moment = ADAM_BETA_2 * second_moment + (1.0 - ADAM_BETA_2) * tf.square(gradient)
    count = tf.cast(step + 1, tf.float32)
    first_unbiased = first_moment / (1.0 - tf.pow(ADAM_BETA_1, count))
    second_unbiased = second_moment / (1.0 - tf.pow(ADAM_BETA_2, count))
    z = z - learning_rate * first_unbiased / (tf.sqrt(second_unbiased) + ADAM_EPSILON)
    return step + 1, z, first_moment, second_moment

  _, z, _, _ = tf.while_loop(lambda step, *_: step < steps, adam_step,
                             (tf.constant(0), z, tf.zeros_like(z), tf.zeros_like(z)))
  return z


def refine_encoding(model, clips: tf.Tensor, steps):
  """A `WaveMusicVAE`'s mu for `clips` [batch, clip_samples], and mu refined by `steps` steps.

  The prior is weighted as training weighted the KL (`config.max_beta`). Returns
  (refined, mu), each float32 [batch, z_size]. Shared by the Keras backend and the
  SavedModel export, so both refine identically.
  """
  _, mu, _ = model.encode(clips)
  refined = refine_latents(model.decode, model.log_mel(clips), mu, steps,
                           prior_weight=model.config.max_beta)
  return refined, tf.cast(mu, tf.float32)
