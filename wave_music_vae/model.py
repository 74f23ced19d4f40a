"""WaveMusicVAE: a MusicVAE over music audio, one latent vector per clip.

waveform [batch, clip_samples]
  -> LogMel                       [batch, num_frames, n_mels]   (model log-mel units)
  -> AudioEncoder                 mu, sigma [batch, z_size]
  -> Sampling                     z [batch, z_size]
  -> HierarchicalDecoder          [batch, num_frames, n_mels]
  -> (to_waveform) Griffin-Lim    [batch, clip_samples]

The model is built from a `Config`; `get_config` returns that config, so a saved
model rebuilds itself from `config.json` alone.
"""

import keras
import tensorflow as tf

from wave_music_vae import latent
from wave_music_vae import losses
from wave_music_vae.config import Config
from wave_music_vae.decoders import HierarchicalDecoder
from wave_music_vae.encoders import AudioEncoder
from wave_music_vae.layers import LogMel, Sampling


@keras.saving.register_keras_serializable(package="wave_music_vae")
class WaveMusicVAE(keras.Model):
  """Encodes clips of audio to z and decodes z to log-mel frames and audio."""

  def __init__(self, config: Config, **kwargs):
    kwargs.setdefault("name", "wave_music_vae")
    super().__init__(**kwargs)
    if isinstance(config, dict):
      config = Config.from_dict(config)
    self.config = config
    self.log_mel = LogMel(config.sample_rate_hz, config.n_fft, config.hop_length, config.n_mels,
                          config.mel_fmin_hz, config.mel_fmax_hz, config.db_floor,
                          config.db_center, config.db_scale, name="log_mel",
                          # Always float32: a float16 waveform (~3 significant digits) loses
                          # the quiet part of the signal, moving log-mels by over 1 dB.
                          dtype="float32")
    self.encoder = AudioEncoder(config.conv_channels, config.conv_pool_time,
                                config.conv_pool_freq, config.encoder_lstm_units,
                                config.z_size, name="encoder", dtype=self.dtype_policy)
    self.sampling = Sampling(seed=config.seed, name="sampling", dtype=self.dtype_policy)
    self.decoder = HierarchicalDecoder(
        config.num_frames, config.n_mels, config.num_segments, config.frames_per_segment,
        config.conductor_lstm_units, config.conductor_embedding_size,
        config.decoder_lstm_units, name="decoder", dtype=self.dtype_policy)
    self.mel = self.log_mel.mel

  @property
  def input_dtype(self):
    """float32 whatever the policy: Keras would otherwise cast the waveform to the compute
    dtype (float16 under mixed precision) before `log_mel` sees it, moving quiet bins by
    tens of dB in training while `encode`, which calls `log_mel` directly, hears float32."""
    return "float32"

  def build(self, input_shape=None):
    """Creates every weight; the input is [batch, clip_samples] waveforms."""
    batch = None
    log_mel_shape = (batch, self.config.num_frames, self.config.n_mels)
    self.log_mel.build((batch, self.config.clip_samples))
    self.encoder.build(log_mel_shape)
    self.sampling.build([(batch, self.config.z_size)] * 2)
    self.decoder.build((batch, self.config.z_size))
    self.built = True

  def call(self, waveforms, training=False):
    """waveforms [batch, clip_samples] -> dict of tensors.

    Keys: `log_mel` (the input's model log-mel, [batch, frames, n_mels]),
    `reconstruction` (decoded from a *sampled* z, same shape), `z`, `mu`, `sigma`
    ([batch, z_size]). `training` only switches batch norm; for a deterministic
    reconstruction decode `mu` (see `reconstruct`).
    """
    log_mel = self.log_mel(waveforms)
    mu, sigma = self.encoder(log_mel, training=training)
    z = self.sampling([mu, sigma])
    reconstruction = self.decoder(z, training=training)
    return {"log_mel": log_mel, "reconstruction": reconstruction, "z": z, "mu": mu,
            "sigma": sigma}

  def encode(self, waveforms):
    """waveforms [batch, clip_samples] -> (z, mu, sigma), each [batch, z_size]."""
    mu, sigma = self.encoder(self.log_mel(waveforms), training=False)
    return self.sampling([mu, sigma]), mu, sigma

  def decode(self, z):
    """z [batch, z_size] -> model log-mel [batch, num_frames, n_mels]."""
    return self.decoder(tf.cast(z, self.compute_dtype), training=False)

  def reconstruct(self, waveforms):
    """waveforms -> model log-mel decoded from the encoder mean (deterministic)."""
    _, mu, _ = self.encode(waveforms)
    return self.decode(mu)

  def sample(self, num_samples: int, temperature: float = 1.0, seed: int = 0):
    """Decodes `num_samples` draws z ~ N(0, temperature^2 I): -> [n, frames, n_mels]."""
    return self.decode(latent.prior_sample(num_samples, self.config.z_size, temperature, seed))

  def to_waveform(self, model_log_mel, iterations=None, seed: int = 0):
    """model log-mel [batch, frames, n_mels] -> waveform [batch, clip_samples] (Griffin-Lim)."""
    iterations = self.config.griffin_lim_iters if iterations is None else iterations
    return self.mel.to_waveform(tf.cast(model_log_mel, tf.float32), self.config.clip_samples,
                                iterations, self.config.griffin_lim_momentum, seed)

  def compute_losses(self, outputs: dict, step) -> dict:
    """Loss terms (see `losses.vae_losses`) for the outputs of `call`."""
    return losses.vae_losses(outputs["log_mel"], outputs["reconstruction"], outputs["mu"],
                             outputs["sigma"], step, self.config)

  def get_config(self):
    """The experiment config beside Keras' own (name, trainable, dtype policy)."""
    return {**super().get_config(), "config": self.config.to_dict()}

  @classmethod
  def from_config(cls, config):
    return cls(**config)


# What reading a damaged checkpoint of `model_variables` raises: a truncated .data file gives
# IndexError ("Read less bytes than requested"), a truncated .index an OpError, a checkpoint
# of another model AssertionError or ValueError.
CHECKPOINT_READ_ERRORS = (tf.errors.OpError, ValueError, AssertionError, IndexError)


def model_variables(model) -> dict:
  """The model's variables keyed by their stable path (`encoder/front_end/block_0/conv/kernel`).

  Checkpoints track this dict rather than the Keras 3 model object, whose layers are
  not tracked as named checkpoint children, so keys stay readable and stable.
  """
  variables = {variable.path.split("/", 1)[-1]: variable for variable in model.weights}
  if len(variables) != len(model.weights):
    raise ValueError("model variables do not have unique paths")
  return variables
