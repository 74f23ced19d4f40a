"""Every custom layer: output shapes, get_config -> JSON -> from_config, argument checks."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from wave_music_vae.decoders import HierarchicalDecoder
from wave_music_vae.encoders import AudioEncoder, BidirectionalLstmEncoder, ConvFrontEnd
from wave_music_vae.layers import ConvBlock2D, LogMel, Sampling

CASES = [
    (LogMel, dict(sample_rate_hz=16000, n_fft=512, hop_length=128, n_mels=32, mel_fmax_hz=8000.0),
     (2, 4000), (2, 1 + 4000 // 128, 32)),
    (ConvBlock2D, dict(filters=4, pool_time=2, pool_freq=4), (2, 10, 16, 3), (2, 5, 4, 4)),
    (ConvFrontEnd, dict(conv_channels=[4, 6], conv_pool_time=[2, 2], conv_pool_freq=[2, 2]),
     (2, 20, 16), (2, 5, 4 * 6)),
    (BidirectionalLstmEncoder, dict(lstm_units=5, z_size=3), (2, 7, 6), ((2, 3), (2, 3))),
    (AudioEncoder, dict(conv_channels=[4], conv_pool_time=[2], conv_pool_freq=[2], lstm_units=5,
                        z_size=3), (2, 20, 16), ((2, 3), (2, 3))),
    (HierarchicalDecoder, dict(num_frames=30, n_mels=8, num_segments=4, conductor_lstm_units=6,
                               conductor_embedding_size=5, decoder_lstm_units=7), (2, 3),
     (2, 30, 8)),
]


def _shapes(outputs):
  if isinstance(outputs, (tuple, list)):
    return tuple(tuple(o.shape) for o in outputs)
  return tuple(outputs.shape)


@pytest.mark.parametrize("layer_class,kwargs,input_shape,output_shape", CASES,
                         ids=[c[0].__name__ for c in CASES])
def test_shapes_and_serialization(layer_class, kwargs, input_shape, output_shape):
  layer = layer_class(**kwargs)
  inputs = tf.random.normal(input_shape) * 0.1
  outputs = layer(inputs)
  assert _shapes(outputs) == output_shape
  config = json.loads(json.dumps(layer.get_config()))
  for key, value in kwargs.items():
    assert config[key] == value, key
  clone = layer_class.from_config(config)
  clone(inputs)  # builds
  clone.set_weights(layer.get_weights())
  for a, b in zip(tf.nest.flatten(layer(inputs)), tf.nest.flatten(clone(inputs))):
    np.testing.assert_allclose(a, b, atol=1e-6)
  assert clone.get_config() == layer.get_config()


@pytest.mark.parametrize("layer_class,kwargs,input_shape,output_shape", CASES[1:],
                         ids=[c[0].__name__ for c in CASES[1:]])
def test_mixed_precision_reaches_every_sublayer(layer_class, kwargs, input_shape, output_shape):
  """A layer's dtype policy is its sublayers' too, however the layer was made (not only
  under a global policy), so `from_config` and `load_model` rebuild the same precision."""
  del output_shape
  layer = layer_class(**kwargs, dtype="mixed_float16")
  outputs = layer(tf.random.normal(input_shape) * 0.1)
  assert {o.dtype for o in tf.nest.flatten(outputs)} == {tf.float16}
  assert all(l.dtype_policy.name == "mixed_float16" for l in layer._flatten_layers())
  assert {w.dtype for w in layer.weights} == {"float32"}  # Variables stay float32.


def test_layers_round_trip_through_keras_serialization():
  layer = ConvBlock2D(3, 2, 2, name="block")
  restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
  assert isinstance(restored, ConvBlock2D) and restored.get_config() == layer.get_config()


def test_sampling_is_reparameterised_and_seeded():
  mu = tf.fill([1000, 2], 3.0)
  sigma = tf.fill([1000, 2], 0.5)
  z = Sampling(seed=1)([mu, sigma]).numpy()
  assert abs(z.mean() - 3.0) < 0.1 and abs(z.std() - 0.5) < 0.05
  np.testing.assert_array_equal(Sampling(seed=1)([mu, sigma]), Sampling(seed=1)([mu, sigma]))


def test_bad_arguments_are_rejected_with_received_values():
  with pytest.raises(ValueError, match="Received: filters=0"):
    ConvBlock2D(0)
  with pytest.raises(ValueError, match="equal lengths"):
    ConvFrontEnd([4, 8], [2], [2, 2])
  with pytest.raises(ValueError, match="num_segments=4, frames_per_segment=2, num_frames=30"):
    HierarchicalDecoder(num_frames=30, n_mels=8, num_segments=4, frames_per_segment=2)
