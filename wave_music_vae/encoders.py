"""Encoder: Conv2D front end over the log-mel, then MusicVAE's bidirectional LSTM.

log-mel [batch, frames, n_mels]
  -> ConvBlock2D x len(conv_channels)        [batch, steps, mels', channels]
     (steps: frames divided by each pool_time in turn, rounding up)
  -> flatten (mels', channels) per step      [batch, steps, mels' * channels]
  -> Bidirectional LSTM, final states of both directions concatenated
  -> mu = Dense(z_size), sigma = softplus(Dense(z_size))   each [batch, z_size]

The convolutions shrink time by prod(conv_pool_time) before the recurrent part, so
the LSTM runs over a few dozen steps per clip and stays affordable on a CPU. The
LSTMs keep Keras' defaults (tanh, sigmoid, no recurrent dropout, not unrolled) so
TensorFlow runs the fused cuDNN kernel when a GPU is present.
"""

import keras
import tensorflow as tf

from wave_music_vae.layers import ConvBlock2D

_PACKAGE = "wave_music_vae"


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ConvFrontEnd(keras.layers.Layer):
  """log-mel [batch, frames, n_mels] -> features [batch, steps, n_features]."""

  def __init__(self, conv_channels=(32, 64, 128), conv_pool_time=(2, 2, 2),
               conv_pool_freq=(2, 2, 2), **kwargs):
    super().__init__(**kwargs)
    if not len(conv_channels) == len(conv_pool_time) == len(conv_pool_freq):
      raise ValueError("conv_channels, conv_pool_time and conv_pool_freq must have equal "
                       f"lengths. Received: {conv_channels}, {conv_pool_time}, {conv_pool_freq}")
    self.conv_channels = tuple(conv_channels)
    self.conv_pool_time = tuple(conv_pool_time)
    self.conv_pool_freq = tuple(conv_pool_freq)
    self.blocks = [
        ConvBlock2D(c, t, f, name=f"block_{i}", dtype=self.dtype_policy) for i, (c, t, f)
        in enumerate(zip(self.conv_channels, self.conv_pool_time, self.conv_pool_freq))]

  def build(self, input_shape):
    shape = (*input_shape, 1)
    for block in self.blocks:
      block.build(shape)
      shape = block.compute_output_shape(shape)

  def call(self, log_mel, training=False):
    x = log_mel[..., tf.newaxis]
    for block in self.blocks:
      x = block(x, training=training)
    shape = tf.shape(x)
    return tf.reshape(x, [shape[0], shape[1], x.shape[2] * x.shape[3]])

  def compute_output_shape(self, input_shape):
    shape = (*input_shape, 1)
    for block in self.blocks:
      shape = block.compute_output_shape(shape)
    return (shape[0], shape[1], shape[2] * shape[3])

  def get_config(self):
    return {**super().get_config(), "conv_channels": list(self.conv_channels),
            "conv_pool_time": list(self.conv_pool_time),
            "conv_pool_freq": list(self.conv_pool_freq)}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class BidirectionalLstmEncoder(keras.layers.Layer):
  """MusicVAE's encoder: features [batch, steps, n] -> (mu, sigma), each [batch, z_size]."""

  def __init__(self, lstm_units=256, z_size=128, **kwargs):
    super().__init__(**kwargs)
    self.lstm_units = lstm_units
    self.z_size = z_size
    policy = self.dtype_policy  # Sublayers compute as this layer does (mixed precision).
    # Both directions named explicitly: Keras' automatic names ("forward_lstm_1") would
    # change with the number of models built in a process, and checkpoints key on them.
    self.lstm = keras.layers.Bidirectional(
        keras.layers.LSTM(lstm_units, return_state=True, name="forward_lstm", dtype=policy),
        backward_layer=keras.layers.LSTM(lstm_units, return_state=True, go_backwards=True,
                                         name="backward_lstm", dtype=policy),
        name="bidirectional_lstm", dtype=policy)
    self.mu_dense = keras.layers.Dense(z_size, name="mu", dtype=policy)
    self.sigma_dense = keras.layers.Dense(z_size, name="sigma", dtype=policy)

  def build(self, input_shape):
    self.lstm.build(input_shape)
    self.mu_dense.build((input_shape[0], 2 * self.lstm_units))
    self.sigma_dense.build((input_shape[0], 2 * self.lstm_units))

  def call(self, features, training=False):
    _, forward_h, _, backward_h, _ = self.lstm(features, training=training)
    state = tf.concat([forward_h, backward_h], axis=-1)
    mu = self.mu_dense(state)
    sigma = tf.nn.softplus(self.sigma_dense(state))
    return mu, sigma

  def compute_output_shape(self, input_shape):
    return (input_shape[0], self.z_size), (input_shape[0], self.z_size)

  def get_config(self):
    return {**super().get_config(), "lstm_units": self.lstm_units, "z_size": self.z_size}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class AudioEncoder(keras.layers.Layer):
  """log-mel [batch, frames, n_mels] -> (mu, sigma), each [batch, z_size]."""

  def __init__(self, conv_channels=(32, 64, 128), conv_pool_time=(2, 2, 2),
               conv_pool_freq=(2, 2, 2), lstm_units=256, z_size=128, **kwargs):
    super().__init__(**kwargs)
    self.conv_channels = tuple(conv_channels)
    self.conv_pool_time = tuple(conv_pool_time)
    self.conv_pool_freq = tuple(conv_pool_freq)
    self.lstm_units = lstm_units
    self.z_size = z_size
    self.front_end = ConvFrontEnd(conv_channels, conv_pool_time, conv_pool_freq,
                                  name="front_end", dtype=self.dtype_policy)
    self.recurrent = BidirectionalLstmEncoder(lstm_units, z_size, name="recurrent",
                                              dtype=self.dtype_policy)

  def build(self, input_shape):
    self.front_end.build(input_shape)
    self.recurrent.build(self.front_end.compute_output_shape(input_shape))

  def call(self, log_mel, training=False):
    return self.recurrent(self.front_end(log_mel, training=training), training=training)

  def compute_output_shape(self, input_shape):
    return (input_shape[0], self.z_size), (input_shape[0], self.z_size)

  def get_config(self):
    return {**super().get_config(), "conv_channels": list(self.conv_channels),
            "conv_pool_time": list(self.conv_pool_time),
            "conv_pool_freq": list(self.conv_pool_freq), "lstm_units": self.lstm_units,
            "z_size": self.z_size}
