"""Keras layers shared by the encoder and decoder: LogMel, ConvBlock2D, Sampling.

Each layer stores every constructor argument under its own name and returns it
from `get_config`, so `layer.__class__.from_config(layer.get_config())` rebuilds it.
"""

import keras
import tensorflow as tf

from wave_music_vae import spectral

_PACKAGE = "wave_music_vae"


@keras.saving.register_keras_serializable(package=_PACKAGE)
class LogMel(keras.layers.Layer):
  """Waveform -> normalised log-mel, over `tf.signal` (see `spectral.MelSpectrogram`).

  Input shape: `[batch, samples]` float32 at `sample_rate_hz`.
  Output shape: `[batch, 1 + samples // hop_length, n_mels]`, (dB - db_center) / db_scale.
  """

  def __init__(self, sample_rate_hz=22050, n_fft=1024, hop_length=256, n_mels=80,
               mel_fmin_hz=0.0, mel_fmax_hz=11025.0, db_floor=-100.0, db_center=-40.0,
               db_scale=40.0, **kwargs):
    super().__init__(**kwargs)
    self.sample_rate_hz = sample_rate_hz
    self.n_fft = n_fft
    self.hop_length = hop_length
    self.n_mels = n_mels
    self.mel_fmin_hz = mel_fmin_hz
    self.mel_fmax_hz = mel_fmax_hz
    self.db_floor = db_floor
    self.db_center = db_center
    self.db_scale = db_scale
    self.mel = spectral.MelSpectrogram(sample_rate_hz, n_fft, hop_length, n_mels, mel_fmin_hz,
                                       mel_fmax_hz, db_floor, db_center, db_scale)

  def call(self, waveforms):
    return self.mel(tf.cast(waveforms, tf.float32))

  def compute_output_shape(self, input_shape):
    samples = input_shape[-1]
    frames = None if samples is None else 1 + samples // self.hop_length
    return (input_shape[0], frames, self.n_mels)

  def get_config(self):
    return {**super().get_config(), "sample_rate_hz": self.sample_rate_hz, "n_fft": self.n_fft,
            "hop_length": self.hop_length, "n_mels": self.n_mels,
            "mel_fmin_hz": self.mel_fmin_hz, "mel_fmax_hz": self.mel_fmax_hz,
            "db_floor": self.db_floor, "db_center": self.db_center, "db_scale": self.db_scale}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ConvBlock2D(keras.layers.Layer):
  """Music auto-tagging CNN block: 3x3 Conv2D -> batch norm -> ReLU -> max pool.

  Input shape: `[batch, frames, mel_bins, channels_in]`.
  Output shape: `[batch, ceil(frames / pool_time), ceil(mel_bins / pool_freq), filters]`
  (max pooling with "same" padding keeps a partial last window).
  """

  def __init__(self, filters, pool_time=2, pool_freq=2, **kwargs):
    super().__init__(**kwargs)
    if filters <= 0 or pool_time <= 0 or pool_freq <= 0:
      raise ValueError("filters, pool_time and pool_freq must be positive. Received: "
                       f"filters={filters}, pool_time={pool_time}, pool_freq={pool_freq}")
    self.filters = filters
    self.pool_time = pool_time
    self.pool_freq = pool_freq
    self.conv = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name="conv",
                                    dtype=self.dtype_policy)
    # Synchronized: under tf.distribute the statistics are those of the global batch,
    # so N replicas normalise as one device would.
    self.norm = keras.layers.BatchNormalization(name="norm", synchronized=True,
                                                   dtype=self.dtype_policy)
    self.pool = keras.layers.MaxPooling2D((pool_time, pool_freq), padding="same", name="pool",
                                           dtype=self.dtype_policy)

  def build(self, input_shape):
    self.conv.build(input_shape)
    conv_shape = self.conv.compute_output_shape(input_shape)
    self.norm.build(conv_shape)
    self.pool.build(conv_shape)

  def call(self, inputs, training=False):
    return self.pool(tf.nn.relu(self.norm(self.conv(inputs), training=training)))

  def compute_output_shape(self, input_shape):
    return self.pool.compute_output_shape(self.conv.compute_output_shape(input_shape))

  def get_config(self):
    return {**super().get_config(), "filters": self.filters, "pool_time": self.pool_time,
            "pool_freq": self.pool_freq}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Sampling(keras.layers.Layer):
  """Reparameterised draw z = mu + sigma * eps, eps ~ N(0, I).

  Input: `[mu, sigma]`, each `[batch, z_size]`. Output: z `[batch, z_size]`.
  """

  def __init__(self, seed=None, **kwargs):
    super().__init__(**kwargs)
    self.seed = seed
    self.seed_generator = keras.random.SeedGenerator(seed)

  def call(self, inputs):
    mu, sigma = inputs
    # Under tf.distribute each replica takes its own rows of noise drawn for the global
    # batch, so replicas differ and N replicas draw exactly what one device would.
    context = tf.distribute.get_replica_context()
    replicas = context.num_replicas_in_sync if context else 1
    replica = context.replica_id_in_sync_group if context else 0
    batch = tf.shape(mu)[0]
    eps = keras.random.normal([replicas * batch, tf.shape(mu)[1]], seed=self.seed_generator,
                              dtype=mu.dtype)
    return mu + sigma * eps[replica * batch:(replica + 1) * batch]

  def compute_output_shape(self, input_shape):
    return input_shape[0]

  def get_config(self):
    return {**super().get_config(), "seed": self.seed}
