"""WaveMusicVAE: shapes of every method, serialization, and that it learns."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from wave_music_vae import training
from wave_music_vae.model import WaveMusicVAE

from conftest import synth_song


@pytest.fixture(scope="module")
def model(tiny_config):
  m = WaveMusicVAE(tiny_config)
  m.build()
  return m


def test_shapes_of_every_method(model, tiny_config):
  c = tiny_config
  x = np.stack([synth_song(c.clip_seconds, seed=s) for s in range(3)])
  out = model(x)
  assert out["log_mel"].shape == out["reconstruction"].shape == (3, c.num_frames, c.n_mels)
  for key in ("z", "mu", "sigma"):
    assert out[key].shape == (3, c.z_size)
  assert float(tf.reduce_min(out["sigma"])) > 0.0
  z, mu, sigma = model.encode(x)
  assert z.shape == mu.shape == sigma.shape == (3, c.z_size)
  assert model.decode(mu).shape == (3, c.num_frames, c.n_mels)
  assert model.sample(2, temperature=0.5, seed=1).shape == (2, c.num_frames, c.n_mels)
  np.testing.assert_array_equal(model.sample(2, seed=3), model.sample(2, seed=3))
  assert model.to_waveform(model.reconstruct(x), iterations=2).shape == (3, c.clip_samples)


def test_get_config_rebuilds_the_same_model(model, tiny_config):
  clone = WaveMusicVAE.from_config(model.get_config())
  clone.build()
  clone.set_weights(model.get_weights())
  assert clone.config == tiny_config
  x = synth_song(tiny_config.clip_seconds)[np.newaxis]
  np.testing.assert_allclose(clone.reconstruct(x), model.reconstruct(x), atol=1e-5)


def test_get_config_keeps_keras_settings_through_json(tiny_config):
  frozen = WaveMusicVAE(tiny_config, name="frozen", trainable=False)
  clone = WaveMusicVAE.from_config(json.loads(json.dumps(frozen.get_config())))
  assert (clone.name, clone.trainable, clone.config) == ("frozen", False, tiny_config)
  assert clone.dtype_policy.name == "float32"


def test_mixed_precision_model_saves_and_loads_as_it_was(tiny_config, tmp_path):
  """`model.save` + `keras.saving.load_model` give back a mixed-precision model whose every
  sublayer computes in float16 and whose outputs equal the original's."""
  model = WaveMusicVAE(tiny_config, dtype="mixed_float16")
  model.build()
  model.save(tmp_path / "model.keras")
  loaded = keras.saving.load_model(tmp_path / "model.keras")
  policies = {l.name: l.dtype_policy.name for l in loaded._flatten_layers()}
  assert policies.pop("log_mel") == "float32"    # The audio front end stays float32...
  assert set(policies.values()) == {"mixed_float16"}
  x = synth_song(tiny_config.clip_seconds)[np.newaxis]
  z, mu, _ = model.encode(x)
  full_precision = WaveMusicVAE(tiny_config)
  full_precision.build()
  full_precision.set_weights(model.get_weights())
  # ...so a mixed-precision model hears what a float32 one hears, and encodes it within
  # float16 rounding.
  np.testing.assert_array_equal(model.log_mel(x), full_precision.log_mel(x))
  # Through the model's call too, which training takes: Keras casts a model's inputs to its
  # compute dtype unless told otherwise.
  np.testing.assert_array_equal(model(x)["log_mel"], full_precision(x)["log_mel"])
  np.testing.assert_allclose(mu, full_precision.encode(x)[1], atol=5e-3)
  assert model.decode(mu).dtype == loaded.decode(mu).dtype == tf.float16
  np.testing.assert_array_equal(loaded.encode(x)[1], mu)
  np.testing.assert_array_equal(loaded.decode(z), model.decode(z))


def test_overfits_a_few_clips_and_kl_respects_free_nats(tiny_config, tmp_path):
  """Four fixed clips: reconstruction falls far below its start; KL stays above the free nats."""
  training.seed_everything(0)
  trainer = training.Trainer(tiny_config, tmp_path)
  clips = np.stack([synth_song(tiny_config.clip_seconds, base_hz=110 * (1 + i), seed=i)
                    for i in range(tiny_config.batch_size)])
  dataset = tf.data.Dataset.from_tensors({"audio": clips}).repeat()
  first = trainer.evaluate(tf.data.Dataset.from_tensors({"audio": clips}), write_summaries=False)
  summary = trainer.train(dataset, 200, progress=False)
  last = trainer.evaluate(tf.data.Dataset.from_tensors({"audio": clips}), write_summaries=False)
  assert summary.end_step == 200 and summary.nonfinite_steps == 0
  assert last["reconstruction_loss"] < 0.3 * first["reconstruction_loss"], (first, last)
  assert last["kl_loss"] > tiny_config.free_nats
  assert last["kl_cost"] == pytest.approx(max(last["kl_loss"] - tiny_config.free_nats, 0.0),
                                          rel=0.05, abs=0.05)
