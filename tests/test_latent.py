"""Latent operations: slerp and the interpolation path, and the edits used by --mode=tweak."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wave_music_vae import latent

Z_SIZE = 16


def _vector(seed: int, scale: float, size: int = Z_SIZE) -> np.ndarray:
  return (scale * np.random.default_rng(seed).normal(size=size)).astype(np.float32)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), scale_1=st.floats(0.01, 10.0), scale_2=st.floats(0.01, 10.0),
       num_steps=st.integers(2, 12))
def test_interpolation_path_has_exact_endpoints_and_num_steps(seed, scale_1, scale_2, num_steps):
  z1, z2 = _vector(seed, scale_1), _vector(seed + 1, scale_2)
  path = latent.interpolation_path(z1, z2, num_steps).numpy()
  assert path.shape == (num_steps, Z_SIZE)
  np.testing.assert_array_equal(path[0], z1)
  np.testing.assert_array_equal(path[-1], z2)


def test_slerp_endpoints_exact_in_a_batch():
  z1 = np.stack([_vector(s, 1.0) for s in range(4)])
  z2 = np.stack([_vector(s + 10, 3.0) for s in range(4)])
  np.testing.assert_array_equal(latent.slerp(z1, z2, 0.0).numpy(), z1)
  np.testing.assert_array_equal(latent.slerp(z1, z2, 1.0).numpy(), z2)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**16), scale_1=st.floats(0.05, 10.0), scale_2=st.floats(0.05, 10.0),
       flip=st.booleans())
def test_intermediate_norms_lie_between_the_endpoints_norms(seed, scale_1, scale_2, flip):
  # At any angle, acute or obtuse (flip makes half the pairs point apart).
  z1, z2 = _vector(seed, scale_1), _vector(seed + 1, scale_2)
  if flip == (float(z1 @ z2) > 0):
    z2 = -z2
  norms = np.linalg.norm(latent.interpolation_path(z1, z2, 9).numpy(), axis=1)
  low, high = sorted([np.linalg.norm(z1), np.linalg.norm(z2)])
  assert np.all(norms[1:-1] >= low * (1 - 1e-5))
  assert np.all(norms[1:-1] <= high * (1 + 1e-5))


@pytest.mark.parametrize("cosine_sign", [1.0, -1.0])
def test_slerp_keeps_the_norm_of_equal_norm_vectors_at_any_angle(cosine_sign):
  z1 = _vector(3, 1.0)
  z2 = _vector(4, 1.0)
  z2 = cosine_sign * np.sign(z1 @ z2) * z2 * np.linalg.norm(z1) / np.linalg.norm(z2)
  norms = np.linalg.norm(latent.interpolation_path(z1, z2, 7).numpy(), axis=1)
  np.testing.assert_allclose(norms, np.linalg.norm(z1), rtol=1e-5)


def test_slerp_of_a_vector_with_itself_stays_put_exactly():
  """Exactly: a song interpolated with itself gives its reconstruction every time (the
  decoder amplified the formula's float32 rounding to 50 LSB of audio)."""
  for seed in range(20):
    z = _vector(seed, 2.0)
    path = latent.interpolation_path(z, z, 7).numpy()
    np.testing.assert_array_equal(path, np.tile(z, [7, 1]))
  pair = np.stack([_vector(1, 1.0), _vector(2, 1.0)])
  other = np.stack([_vector(1, 1.0), _vector(3, 1.0)])   # the first row equal, the second not
  halfway = latent.slerp(pair, other, 0.5).numpy()
  np.testing.assert_array_equal(halfway[0], pair[0])
  assert not np.allclose(halfway[1], pair[1])


def test_set_dimensions_changes_only_the_named_dimensions():
  z = np.stack([_vector(6, 1.0), _vector(7, 1.0)])
  edited = latent.set_dimensions(z, [2, 5], [4.0, -1.5]).numpy()
  np.testing.assert_array_equal(edited[:, 2], [4.0, 4.0])
  np.testing.assert_array_equal(edited[:, 5], [-1.5, -1.5])
  untouched = [d for d in range(Z_SIZE) if d not in (2, 5)]
  np.testing.assert_array_equal(edited[:, untouched], z[:, untouched])


def test_set_dimensions_named_twice_takes_the_last_value():
  z = np.stack([_vector(6, 1.0), _vector(7, 1.0)])
  edited = latent.set_dimensions(z, [5, 2, 5, 5], [2.0, 1.0, 2.0, -3.0]).numpy()
  np.testing.assert_array_equal(edited[:, 5], [-3.0, -3.0])   # not the sum, 1.0
  np.testing.assert_array_equal(edited[:, 2], [1.0, 1.0])
  np.testing.assert_array_equal(latent.set_dimensions(z, [], []).numpy(), z)


def test_max_out_pushes_to_k_stddevs_on_the_dimensions_own_side():
  z = np.array([[0.3, -0.2, 1.0], [-0.7, 0.4, 0.0]], np.float32)
  edited = latent.max_out(z, 0, 2.5).numpy()
  np.testing.assert_allclose(edited[:, 0], [2.5, -2.5])
  np.testing.assert_array_equal(edited[:, 1:], z[:, 1:])


def test_flatten_and_add_attribute_are_neutral_at_zero_and_act_otherwise():
  z = np.stack([_vector(8, 1.0), _vector(9, 1.0)])
  vector = _vector(10, 0.5)
  np.testing.assert_array_equal(latent.flatten(z, 0.0).numpy(), z)
  np.testing.assert_array_equal(latent.add_attribute(z, vector, 0.0).numpy(), z)
  np.testing.assert_allclose(latent.flatten(z, 0.25).numpy(), 0.75 * z, rtol=1e-6)
  np.testing.assert_allclose(latent.flatten(z, 1.0).numpy(), 0.0)
  np.testing.assert_allclose(latent.add_attribute(z, vector, 1.5).numpy(), z + 1.5 * vector,
                             rtol=1e-6)
