"""Semi-amortised encoding: refining codes by gradient steps on the decoder's error."""

import numpy as np
import pytest
import tensorflow as tf

from conftest import synth_song
from wave_music_vae import checkpoints
from wave_music_vae import refinement

FRAMES, MELS, Z_SIZE = 6, 5, 4


def _linear_decoder(seed: int = 0):
  """z [batch, 4] -> [batch, 6, 5]: a fixed random linear map, a decoder with known inverses."""
  weights = tf.constant(np.random.default_rng(seed).standard_normal([Z_SIZE, FRAMES * MELS]),
                        tf.float32)
  return lambda z: tf.reshape(tf.matmul(z, weights), [-1, FRAMES, MELS])


def test_zero_steps_gives_back_the_initial_codes():
  decode = _linear_decoder()
  start = tf.random.stateless_normal([3, Z_SIZE], seed=[1, 2])
  target = decode(tf.zeros([3, Z_SIZE]))
  np.testing.assert_array_equal(refinement.refine_latents(decode, target, start, 0), start)


def test_refinement_finds_the_code_a_linear_decoder_was_given():
  decode = _linear_decoder()
  true_z = tf.random.stateless_normal([3, Z_SIZE], seed=[3, 4])
  refined = refinement.refine_latents(decode, decode(true_z), tf.zeros([3, Z_SIZE]), 600,
                                      learning_rate=0.02)
  np.testing.assert_allclose(refined, true_z, atol=0.05)


def test_the_prior_term_pulls_codes_toward_zero_where_the_decoder_does_not_care():
  constant = lambda z: tf.zeros([tf.shape(z)[0], FRAMES, MELS])   # Ignores z.
  start = tf.fill([2, Z_SIZE], 2.0)
  target = tf.zeros([2, FRAMES, MELS])
  unpulled = refinement.refine_latents(constant, target, start, 50, prior_weight=0.0)
  pulled = refinement.refine_latents(constant, target, start, 50, prior_weight=0.5)
  np.testing.assert_array_equal(unpulled, start)
  assert np.all(np.abs(pulled.numpy()) < 0.25)   # Adam moves about 0.05 a step, from 2.


@pytest.fixture(scope="module")
def model_and_clips(trained_run_dir):
  model = checkpoints.load(run_dir=str(trained_run_dir)).model
  clip = model.config.clip_samples
  clips = np.stack([synth_song(1.0, base_hz=hz, seed=s)[:clip]
                    for s, hz in ((31, 150.0), (32, 300.0), (33, 520.0))])
  return model, tf.constant(clips)


def test_refining_the_trained_model_lowers_each_clips_objective(model_and_clips):
  model, clips = model_and_clips
  refined, mu = refinement.refine_encoding(model, clips, 20)
  np.testing.assert_allclose(mu, model.encode(clips)[1], atol=1e-6)
  target = model.log_mel(clips)
  before = refinement.refinement_objective(model.decode, target, mu, model.config.max_beta)
  after = refinement.refinement_objective(model.decode, target, refined, model.config.max_beta)
  assert np.all(after.numpy() < before.numpy()), (before, after)
  assert np.all(np.isfinite(refined.numpy()))


def test_each_clip_is_refined_as_if_it_came_alone(model_and_clips):
  model, clips = model_and_clips
  together = refinement.refine_encoding(model, clips, 5)[0].numpy()
  alone = np.concatenate([refinement.refine_encoding(model, clips[i:i + 1], 5)[0].numpy()
                          for i in range(3)])
  np.testing.assert_allclose(together, alone, atol=1e-4)
