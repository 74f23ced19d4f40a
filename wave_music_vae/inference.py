"""One interface to a trained model, whether Keras weights or a SavedModel export.

Generation and evaluation talk to a `Backend`:
  config       the model's `Config`
  attributes   {label: attribute vector [z_size]} carried by the checkpoint
  source       what was loaded, for messages
  encode(waveforms [batch, clip_samples]) -> (z, mu, sigma), each float32 [batch, z_size]
  encode_refined(waveforms [batch, clip_samples], refine_steps)
      -> codes float32 [batch, z_size]: mu refined by `refine_steps` gradient steps on
         the decoder's error (`refinement.refine_latents`; 0 steps gives mu)
  decode(z [batch, z_size], griffin_lim_iters=None)
      -> (waveform float32 [batch, clip_samples], model log-mel [batch, frames, n_mels])
All arrays are numpy. `load_backend` picks the implementation from the flags the
commands share: `--checkpoint_file`, `--run_dir` or `--saved_model` (default: the
shipped checkpoint).
"""

from typing import Dict, Optional, Protocol, Tuple

import numpy as np
import tensorflow as tf

from wave_music_vae import checkpoints
from wave_music_vae import export
from wave_music_vae import refinement
from wave_music_vae.config import Config


class Backend(Protocol):
  config: Config
  attributes: Dict[str, np.ndarray]
  source: str

  def encode(self, waveforms: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    ...

  def encode_refined(self, waveforms: np.ndarray, refine_steps: int) -> np.ndarray:
    ...

  def decode(self, z: np.ndarray, griffin_lim_iters: Optional[int] = None
             ) -> Tuple[np.ndarray, np.ndarray]:
    ...


class KerasBackend:
  """A `Backend` over an in-process `WaveMusicVAE` (see `checkpoints.load`)."""

  def __init__(self, loaded: checkpoints.LoadedModel):
    self.loaded = loaded
    self.model = loaded.model
    self.config = loaded.config
    self.attributes = loaded.attributes
    self.source = loaded.source
    clip = tf.TensorSpec([None, self.config.clip_samples], tf.float32)
    latent = tf.TensorSpec([None, self.config.z_size], tf.float32)
    self._encode = tf.function(self.model.encode, input_signature=[clip])
    self._decode = tf.function(
        lambda z, iters: self._decode_graph(z, iters),
        input_signature=[latent, tf.TensorSpec([], tf.int32)])
    self._encode_refined = tf.function(
        lambda clips, steps: refinement.refine_encoding(self.model, clips, steps)[0],
        input_signature=[clip, tf.TensorSpec([], tf.int32)])

  def _decode_graph(self, z, iterations):
    log_mel = tf.cast(self.model.decode(z), tf.float32)
    return self.model.to_waveform(log_mel, iterations), log_mel

  def encode(self, waveforms):
    z, mu, sigma = self._encode(tf.convert_to_tensor(waveforms, tf.float32))
    return z.numpy(), mu.numpy(), sigma.numpy()

  def encode_refined(self, waveforms, refine_steps):
    return self._encode_refined(tf.convert_to_tensor(waveforms, tf.float32),
                                tf.constant(int(refine_steps), tf.int32)).numpy()

  def decode(self, z, griffin_lim_iters=None):
    iterations = self.config.griffin_lim_iters if griffin_lim_iters is None else griffin_lim_iters
    waveform, log_mel = self._decode(tf.convert_to_tensor(z, tf.float32),
                                     tf.constant(int(iterations), tf.int32))
    return waveform.numpy(), log_mel.numpy()


def load_backend(checkpoint_file: Optional[str] = None, run_dir: Optional[str] = None,
                 saved_model: Optional[str] = None, config: Optional[Config] = None) -> Backend:
  """The model named by the shared flags; with none of them, the shipped checkpoint."""
  choices = (("--checkpoint_file", checkpoint_file), ("--run_dir", run_dir),
             ("--saved_model", saved_model))
  given = [name for name, value in choices if value]
  if len(given) > 1:
    raise checkpoints.CheckpointError(f"give at most one of {', '.join(given)}")
  if saved_model:
    return export.load_export(saved_model, config)
  return KerasBackend(checkpoints.load(checkpoint_file, run_dir, config))
