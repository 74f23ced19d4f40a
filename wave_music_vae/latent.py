"""Latent-space operations, in pure TensorFlow so the export carries them too.

All vectors are float32 `[..., z_size]`; the prior is N(0, I).
  slerp / interpolation_path   MusicVAE's spherical interpolation between two codes
  set_dimensions               set chosen dimensions to values ("--tweak=DIM:VALUE")
  max_out                      push one dimension to k prior standard deviations
  flatten                      shrink toward the prior mean (0) by a factor
  add_attribute                add amount * an attribute vector (label mean - overall mean)
  prior_sample                 seeded draws from the prior at a temperature
"""

import tensorflow as tf

# z ~ N(0, I), so these bound what an edit or a draw can mean; beyond them float32
# overflows (1e39 * 0 is NaN, which would decode to silence) long before anything
# audible changes.
MAX_EDIT = 1000.0          # Largest |value|: set value, scale factor, attribute amount, stddevs.
MAX_TEMPERATURE = 100.0    # Largest prior temperature.


def slerp(z1: tf.Tensor, z2: tf.Tensor, t: tf.Tensor) -> tf.Tensor:
  """Spherical interpolation. z1, z2 [z_size] or [batch, z_size]; t in [0, 1] broadcast.

  The direction moves along the great circle between z1 and z2 (MusicVAE's slerp)
  while the length moves linearly from |z1| to |z2|. MusicVAE's formula applies the
  sine weights to the vectors themselves, which for unequal lengths at an obtuse
  angle dips below both lengths mid-way, toward the prior's low-density centre;
  separating length and direction keeps every point's norm between the endpoints'.
  t = 0 gives z1 and t = 1 gives z2 exactly, and z1 == z2 gives z1 at every t (so a song
  interpolated with itself gives its reconstruction every time, not one off by the
  rounding of the formula). Nearly parallel directions fall back to
  linear interpolation of the direction (the formula divides by sin(angle)); so do
  exactly opposite ones (z2 = -c z1), where no great circle is singled out and the
  path passes through 0 at the point where the directions cancel.
  """
  z1 = tf.convert_to_tensor(z1, tf.float32)
  z2 = tf.convert_to_tensor(z2, tf.float32)
  t = tf.convert_to_tensor(t, tf.float32)[..., tf.newaxis]
  norm1 = tf.norm(z1, axis=-1, keepdims=True)
  norm2 = tf.norm(z2, axis=-1, keepdims=True)
  unit1 = z1 / tf.maximum(norm1, 1e-12)
  unit2 = z2 / tf.maximum(norm2, 1e-12)
  cos = tf.reduce_sum(unit1 * unit2, axis=-1, keepdims=True)
  omega = tf.acos(tf.clip_by_value(cos, -1.0, 1.0))
  sin = tf.sin(omega)
  safe_sin = tf.where(sin > 1e-6, sin, tf.ones_like(sin))
  spherical = (tf.sin((1.0 - t) * omega) * unit1 + tf.sin(t * omega) * unit2) / safe_sin
  linear = (1.0 - t) * unit1 + t * unit2
  direction = tf.where(sin > 1e-6, spherical, linear)
  direction = direction / tf.maximum(tf.norm(direction, axis=-1, keepdims=True), 1e-12)
  result = direction * ((1.0 - t) * norm1 + t * norm2)
  # Exact endpoints whatever the rounding.
  result = tf.where(t <= 0.0, z1 + 0.0 * result, tf.where(t >= 1.0, z2 + 0.0 * result, result))
  same = tf.reduce_all(tf.equal(z1, z2), axis=-1, keepdims=True)
  return tf.where(same, z1 + 0.0 * result, result)


def interpolation_path(z1: tf.Tensor, z2: tf.Tensor, num_steps) -> tf.Tensor:
  """`num_steps` codes from z1 to z2, endpoints included: [z_size] x2 -> [num_steps, z_size]."""
  num_steps = tf.convert_to_tensor(num_steps, tf.int32)
  t = tf.linspace(0.0, 1.0, num_steps)
  return slerp(tf.convert_to_tensor(z1, tf.float32)[tf.newaxis],
               tf.convert_to_tensor(z2, tf.float32)[tf.newaxis], t)


def set_dimensions(z: tf.Tensor, dimensions: tf.Tensor, values: tf.Tensor) -> tf.Tensor:
  """z [batch, z_size]; dimensions int [k]; values [k] -> z with z[:, d_i] = v_i.

  A dimension named twice takes its last value, as a repeated flag would.
  """
  z = tf.convert_to_tensor(z, tf.float32)
  dimensions = tf.convert_to_tensor(dimensions, tf.int32)
  values = tf.convert_to_tensor(values, tf.float32)
  positions = tf.range(tf.shape(dimensions)[0])
  superseded = tf.reduce_any(                                                    # [k]
      tf.equal(dimensions[:, tf.newaxis], dimensions[tf.newaxis, :])
      & (positions[:, tf.newaxis] < positions[tf.newaxis, :]), axis=1)
  one_hot = tf.one_hot(dimensions, tf.shape(z)[-1]) * tf.cast(
      tf.logical_not(superseded), tf.float32)[:, tf.newaxis]                    # [k, z_size]
  mask = tf.reduce_sum(one_hot, axis=0)                                          # [z_size]
  replacement = tf.reduce_sum(one_hot * values[:, tf.newaxis], axis=0)
  return z * (1.0 - mask) + replacement


def max_out(z: tf.Tensor, dimension, num_stddevs: float = 3.0) -> tf.Tensor:
  """Sets dimension `dimension` to num_stddevs prior standard deviations, on its own side."""
  z = tf.convert_to_tensor(z, tf.float32)
  current = tf.gather(z, [dimension], axis=-1)[..., 0]
  sign = tf.where(current < 0.0, -1.0, 1.0)
  return set_dimensions(z, [dimension], [0.0]) + (
      tf.one_hot(dimension, tf.shape(z)[-1]) * (sign * num_stddevs)[..., tf.newaxis])


def flatten(z: tf.Tensor, factor) -> tf.Tensor:
  """Shrinks z toward the prior mean: z * (1 - factor). factor 0 keeps z, 1 gives 0."""
  return tf.convert_to_tensor(z, tf.float32) * (1.0 - tf.cast(factor, tf.float32))


def prior_sample(num_samples, z_size: int, temperature, seed) -> tf.Tensor:
  """`num_samples` draws of N(0, temperature^2 I): float32 [num_samples, z_size].

  The same seed gives the same codes (a stateless generator), in Python or in a graph.
  """
  return tf.cast(temperature, tf.float32) * tf.random.stateless_normal(
      [num_samples, z_size], seed=tf.stack([tf.cast(seed, tf.int64), tf.constant(1, tf.int64)]))


def add_attribute(z: tf.Tensor, attribute_vector: tf.Tensor, amount) -> tf.Tensor:
  """z + amount * attribute_vector (MusicVAE's latent arithmetic)."""
  return (tf.convert_to_tensor(z, tf.float32)
          + tf.cast(amount, tf.float32) * tf.convert_to_tensor(attribute_vector, tf.float32))
