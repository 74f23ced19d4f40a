"""Plots: spectrogram panels of generated songs, and loss curves from TensorBoard events."""

import warnings

import matplotlib.colors
import matplotlib.image
import numpy as np
import pytest

from conftest import synth_song
from wave_music_vae import generation
from wave_music_vae import inference
from wave_music_vae import plotting


@pytest.fixture(scope="module")
def backend(trained_run_dir):
  return inference.load_backend(run_dir=str(trained_run_dir))


def test_plot_of_songs_named_in_other_scripts_warns_nothing(backend, tmp_path):
  waveforms = np.stack([synth_song(1.0, seed=1), synth_song(1.0, seed=2)])
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    plotting.plot_spectrograms(waveforms, backend.config, ["夜の曲.wav", "노래.flac"], (0,),
                               tmp_path / "names.png", title="夜の曲.wav -> 노래.flac")
  assert not [str(w.message) for w in caught], [str(w.message) for w in caught]
  assert matplotlib.image.imread(tmp_path / "names.png").shape[0] > 200


def test_plot_draws_one_panel_per_output_and_keeps_existing_files(backend, tmp_path):
  result = generation.interpolate(backend, synth_song(1.2, seed=1),
                                  synth_song(1.2, base_hz=440.0, seed=2), num_outputs=3)
  path = plotting.plot_spectrograms(result.waveforms, backend.config, result.labels,
                                    result.marked, tmp_path / "path.png", title="morph")
  unmarked = plotting.plot_spectrograms(result.waveforms, backend.config, result.labels, (),
                                        tmp_path / "unmarked.png")
  mark = np.array(matplotlib.colors.to_rgb(plotting.MARK_COLOR))

  def marked_pixels(png):
    image = matplotlib.image.imread(png)[..., :3]
    return np.sum(np.all(np.abs(image - mark) < 0.05, axis=-1)), image.shape

  (with_marks, shape), (without_marks, _) = marked_pixels(path), marked_pixels(unmarked)
  assert shape[0] > 300
  assert with_marks > without_marks + 2000, (with_marks, without_marks)   # Two framed panels.
  with pytest.raises(FileExistsError):
    plotting.plot_spectrograms(result.waveforms, backend.config, result.labels, result.marked,
                               path)


def test_loss_curves_read_the_run_s_tensorboard_scalars(trained_run_dir, tiny_config, tmp_path):
  """`read_scalars` gives each tag's points in step order, as training logged them every
  `summary_every_steps`; `plot_loss_curves` draws them (the README's loss figure)."""
  tags = ("losses/reconstruction_loss", "losses/kl_loss")
  scalars = plotting.read_scalars(trained_run_dir / "train", tags + ("no/such_tag",))
  for tag in tags:
    steps, values = scalars[tag]
    assert len(steps) >= 150 // tiny_config.summary_every_steps - 1
    assert np.all(np.diff(steps) > 0) and steps[-1] <= 150
    assert np.all(np.isfinite(values)) and np.all(values >= 0)
  reconstruction = scalars["losses/reconstruction_loss"][1]
  assert reconstruction[-5:].mean() < reconstruction[:5].mean()   # it trained
  assert len(scalars["no/such_tag"][0]) == 0
  path = plotting.plot_loss_curves(trained_run_dir, tmp_path / "loss.png", tags=tags)
  image = matplotlib.image.imread(path)
  assert image.shape[1] > image.shape[0] > 200     # two panels side by side


def test_silence_is_drawn_at_the_bottom_of_the_colour_scale(backend, tmp_path):
  """The scale runs down from the loudest bin; for silence (every bin at the log-mel floor)
  that drew silence in the loudest colour."""
  path = plotting.plot_spectrograms(np.zeros((1, 22050), np.float32), backend.config, ["quiet"],
                                    (), tmp_path / "silence.png")
  image = matplotlib.image.imread(path)[..., :3]
  magma = matplotlib.colormaps["magma"]

  def pixels_near(rgb):
    return int(np.sum(np.all(np.abs(image - np.array(rgb[:3])) < 0.05, axis=-1)))

  assert pixels_near(magma(0.0)) > 50_000   # the panel, less its colour bar
  assert pixels_near(magma(1.0)) < 5_000    # the colour bar's top only
