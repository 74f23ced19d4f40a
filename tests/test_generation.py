"""Whole-song generation on the tiny trained model: windows, stitching, the four modes, outputs."""

import functools
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import SAMPLE_RATE_HZ, synth_song
from wave_music_vae import audio_io
from wave_music_vae import generation
from wave_music_vae import inference
from wave_music_vae import spectral


@pytest.fixture(scope="module")
def backend(trained_run_dir):
  return inference.load_backend(run_dir=str(trained_run_dir))


@pytest.fixture(scope="module")
def mel(backend):
  """Model log-mel of audio: [batch, samples] -> [batch, frames, n_mels] (dB / 40 units)."""
  transform = spectral.MelSpectrogram.from_config(backend.config)
  return lambda waveforms: transform(np.atleast_2d(waveforms)).numpy()


def _song_file(song_folder, label: str, index: int) -> np.ndarray:
  """A real file of the fixture folder, decoded: float32 [3 s * 22050]."""
  return audio_io.read_audio(song_folder / label / f"song {index}.wav", SAMPLE_RATE_HZ)


@settings(max_examples=60, deadline=None)
@given(num_samples=st.integers(1, 20000), clip_samples=st.integers(64, 2000),
       crossfade_share=st.floats(0.0, 0.5))
def test_window_grid_covers_the_song_with_equal_power_crossfades(num_samples, clip_samples,
                                                                 crossfade_share):
  crossfade = min(int(crossfade_share * clip_samples), clip_samples // 2)
  grid = generation.WindowGrid.for_song(num_samples, clip_samples, crossfade)
  starts = np.array(grid.starts)
  assert starts[0] == 0
  assert starts[-1] == max(num_samples - clip_samples, 0)
  assert np.all(np.diff(starts) > 0)
  assert np.all(np.diff(starts) <= clip_samples - crossfade)
  power = np.zeros(max(num_samples, clip_samples))
  for index, start in enumerate(grid.starts):
    power[start:start + clip_samples] += grid.weights(index).astype(np.float64) ** 2
  np.testing.assert_allclose(power[:num_samples], 1.0, atol=1e-5)


def test_stitching_crossfades_where_hard_cuts_would_jump():
  clip, crossfade = 400, 100
  grid = generation.WindowGrid.for_song(1100, clip, crossfade)
  levels = [0.5, -0.5, 0.4, -0.3]
  assert grid.num_windows == len(levels)
  windows = np.array([[np.full(clip, level, np.float32)] for level in levels])
  stitched = generation.stitch_windows(grid, [(list(range(grid.num_windows)), windows)], 1)[0]
  steepest_ramp = np.max(np.abs(levels)) * np.pi / (2 * crossfade) * 2
  assert np.max(np.abs(np.diff(stitched))) <= steepest_ramp
  hard_grid = generation.WindowGrid.for_song(1100, clip, 0)
  hard_windows = np.array([[np.full(clip, levels[i], np.float32)]
                           for i in range(hard_grid.num_windows)])
  hard = generation.stitch_windows(hard_grid, [(list(range(hard_grid.num_windows)),
                                                hard_windows)], 1)[0]
  assert np.max(np.abs(np.diff(hard))) >= 0.9


def test_three_window_song_comes_back_at_its_length_without_jumps_at_the_seams(backend):
  clip = backend.config.clip_samples
  song = synth_song(2.5, seed=3)
  grid = generation.WindowGrid.for_song(len(song), clip)
  assert grid.num_windows == 3
  result = generation.reconstruct(backend, song)
  assert result.waveforms.shape == (1, len(song))
  output = result.waveforms[0]
  # Seams: where windows start and end, and where their crossfades start and end.
  seams = [edge for i in range(1, grid.num_windows)
           for edge in (grid.starts[i], grid.starts[i - 1] + clip, grid.fade_in_start(i),
                        grid.fade_in_start(i) + grid.crossfade_samples)]
  # A click is a step: it shows in the first difference and, standing out from the
  # signal's own slope, in the second. Neither may be much larger at a seam than
  # elsewhere. (Within a crossfade two renderings mix, whose sum can be a little steeper
  # than either: 4% more in the second difference for one tiny model; a cut from one
  # window to the next is a step of the signal's own size, many times its slope.)
  for order in (1, 2):
    jumps = np.abs(np.diff(output, order))
    near_seams = np.zeros(len(jumps), bool)
    for seam in seams:
      near_seams[max(seam - 8, 0):seam + 8] = True
    assert jumps[near_seams].max() <= 1.25 * jumps[~near_seams].max(), order
  assert np.sqrt(np.mean(output ** 2)) > 0.01


def test_a_song_shorter_than_one_clip_keeps_its_length(backend):
  song = synth_song(0.4, seed=2)
  assert generation.WindowGrid.for_song(len(song), backend.config.clip_samples).starts == (0,)
  result = generation.tweak(backend, song, generation.LatentEdit(flatten_factor=0.5))
  assert result.waveforms.shape == (1, len(song))
  assert result.latents.shape == (1, 1, backend.config.z_size)


def test_interpolating_a_clip_with_itself_gives_its_reconstruction_at_every_step(backend, mel):
  song = synth_song(1.6, seed=4)
  other = synth_song(1.6, base_hz=440.0, seed=5)
  interpolation = generation.interpolate(backend, song, song, num_outputs=4)
  reconstruction = generation.reconstruct(backend, song)
  assert interpolation.num_outputs == 4
  np.testing.assert_allclose(interpolation.latents, np.repeat(reconstruction.latents, 4, axis=1),
                             atol=1e-5)
  # Griffin-Lim draws each clip's starting phases by its place in the batch, so
  # compare what is heard: log-mels of the audio.
  to_self = np.abs(mel(interpolation.waveforms) - mel(reconstruction.waveforms)).mean(axis=(1, 2))
  to_other = np.abs(mel(generation.reconstruct(backend, other).waveforms)
                    - mel(reconstruction.waveforms)).mean()
  assert np.all(to_self < 0.1 * to_other), (to_self, to_other)


def test_interpolation_moves_away_from_clip_1_and_toward_clip_2(backend, mel, song_folder):
  clip = backend.config.clip_samples
  num_outputs = 7
  to_1, to_2 = np.zeros(num_outputs), np.zeros(num_outputs)
  pairs = [(_song_file(song_folder, "low", i), _song_file(song_folder, "high", i))
           for i in range(3)]
  for low, high in pairs:
    clip_1, clip_2 = low[:clip], high[clip:2 * clip]
    result = generation.interpolate(backend, clip_1, clip_2, num_outputs)
    _, decoded = backend.decode(result.latents[0])       # [num_outputs, frames, n_mels]
    to_1 += np.abs(decoded - mel(clip_1)).mean(axis=(1, 2)) / len(pairs)
    to_2 += np.abs(decoded - mel(clip_2)).mean(axis=(1, 2)) / len(pairs)
  half = num_outputs // 2
  assert to_1[-1] - to_1[0] > 0.2 and to_2[0] - to_2[-1] > 0.2, (to_1, to_2)
  assert to_1[half + 1:].mean() > to_1[:half].mean(), to_1
  assert to_2[half + 1:].mean() < to_2[:half].mean(), to_2
  # Relative closeness moves one way only: never back toward clip 1.
  assert np.all(np.diff(to_1 - to_2) > -0.02), to_1 - to_2


def test_interpolation_is_cut_to_the_shorter_song_and_its_endpoints_are_reconstructions(
    backend, mel):
  longer = synth_song(2.5, seed=6)
  shorter = synth_song(1.6, base_hz=440.0, seed=7)
  result = generation.interpolate(backend, longer, shorter, num_outputs=3)
  assert result.waveforms.shape == (3, len(shorter))
  assert result.marked == (0, 2)
  first = generation.reconstruct(backend, longer[:len(shorter)])
  last = generation.reconstruct(backend, shorter)
  np.testing.assert_array_equal(result.latents[:, 0], first.latents[:, 0])
  np.testing.assert_array_equal(result.latents[:, -1], last.latents[:, 0])
  between = np.abs(mel(first.waveforms) - mel(last.waveforms)).mean()
  assert np.abs(mel(result.waveforms[0]) - mel(first.waveforms)).mean() < 0.1 * between
  assert np.abs(mel(result.waveforms[2]) - mel(last.waveforms)).mean() < 0.1 * between


def test_refined_codes_decode_closer_to_each_window(backend, mel, song_folder):
  song = _song_file(song_folder, "high", 1)
  grid = generation.WindowGrid.for_song(len(song), backend.config.clip_samples)
  target = mel(grid.windows(song, range(grid.num_windows)))
  errors = {}
  for steps in (0, 40):
    latents = generation.reconstruct(backend, song, refine_steps=steps).latents[:, 0]
    errors[steps] = np.abs(backend.decode(latents)[1] - target).mean()
  assert errors[40] < errors[0], errors   # Deterministic: no Griffin-Lim in between.


def test_sample_repeats_with_its_seed_and_respects_num_outputs(backend):
  first = generation.sample(backend, num_outputs=3, temperature=0.8, seed=11)
  again = generation.sample(backend, num_outputs=3, temperature=0.8, seed=11)
  other = generation.sample(backend, num_outputs=3, temperature=0.8, seed=12)
  assert first.waveforms.shape == (3, backend.config.clip_samples)
  np.testing.assert_array_equal(first.waveforms, again.waveforms)
  assert not np.allclose(first.latents, other.latents)
  np.testing.assert_allclose(np.std(first.latents), 0.8, rtol=0.5)
  assert np.all(np.max(np.abs(first.waveforms), axis=-1) <= audio_io.PEAK_LIMIT + 1e-6)


def test_edits_change_the_output_and_zero_edits_do_not(backend, mel):
  song = synth_song(1.6, seed=8)
  reconstruction = generation.reconstruct(backend, song)
  attributes = {"brighter": np.linspace(-1.0, 1.0, backend.config.z_size).astype(np.float32)}
  backend_attributes, backend.attributes = backend.attributes, attributes
  try:
    zero_edits = [generation.LatentEdit(attributes=(("brighter", 0.0),)),
                  generation.LatentEdit(scales=((0, 1.0),), flatten_factor=0.0)]
    for edit in zero_edits:
      unchanged = generation.tweak(backend, song, edit)
      np.testing.assert_array_equal(unchanged.waveforms, reconstruction.waveforms)
    _, reconstructed_log_mel = backend.decode(reconstruction.latents[:, 0])
    edits = [generation.LatentEdit(sets=((5, 3.0),)),
             generation.LatentEdit(scales=((1, -1.0),)),
             generation.LatentEdit(max_out_dims=(5,), max_out_stddevs=3.0),
             generation.LatentEdit(flatten_factor=0.8),
             generation.LatentEdit(attributes=(("brighter", 2.0),))]
    for edit in edits:
      changed = generation.tweak(backend, song, edit)
      assert not np.array_equal(changed.waveforms, reconstruction.waveforms), edit
      _, changed_log_mel = backend.decode(changed.latents[:, 0])
      # Decoded log-mels are deterministic: a zero edit changes them by exactly 0.
      change = np.abs(changed_log_mel - reconstructed_log_mel).mean()
      assert change > 1e-3, (edit, change)
  finally:
    backend.attributes = backend_attributes


class _CountingBackend:
  """The real backend, recording how many clips each decode call is given."""

  def __init__(self, backend):
    self._backend = backend
    self.decode_sizes = []

  def __getattr__(self, name):
    return getattr(self._backend, name)

  def decode(self, z, griffin_lim_iters=None):
    self.decode_sizes.append(len(z))
    return self._backend.decode(z, griffin_lim_iters)


def test_many_outputs_are_decoded_a_batch_at_a_time(backend):
  """Memory must not grow with --num_outputs: at most BATCH_CLIPS clips per decode call."""
  counting = _CountingBackend(backend)
  many = generation.BATCH_CLIPS * 2 + 3
  result = generation.sample(counting, num_outputs=many, seed=4, griffin_lim_iters=2)
  assert max(counting.decode_sizes) == generation.BATCH_CLIPS
  assert sum(counting.decode_sizes) == many
  assert result.waveforms.shape == (many, backend.config.clip_samples)
  np.testing.assert_array_equal(
      result.waveforms, generation.sample(backend, num_outputs=many, seed=4,
                                          griffin_lim_iters=2).waveforms)
  counting.decode_sizes.clear()
  generation.interpolate(counting, synth_song(2.5, seed=1), synth_song(2.5, seed=2),
                         num_outputs=many, griffin_lim_iters=2)
  assert max(counting.decode_sizes) <= generation.BATCH_CLIPS


def test_edits_are_checked_against_the_model(backend):
  z_size = backend.config.z_size
  with pytest.raises(generation.GenerationError, match=f"dimension {z_size} does not exist"):
    generation.tweak(backend, synth_song(1.0), generation.LatentEdit(sets=((z_size, 1.0),)))
  with pytest.raises(generation.GenerationError, match="unknown attribute 'jazz'"):
    generation.tweak(backend, synth_song(1.0), generation.LatentEdit(attributes=(("jazz", 1.0),)))
  with pytest.raises(generation.GenerationError, match="flatten factor"):
    generation.tweak(backend, synth_song(1.0), generation.LatentEdit(flatten_factor=1.5))
  for temperature in (0.0, float("nan"), 3e38):
    with pytest.raises(generation.GenerationError, match=r"temperature must be in \(0, 100\]"):
      generation.sample(backend, 1, temperature)
  # NaN, infinite or float32-overflowing amounts would decode to silence: refused, not written.
  for edit in (generation.LatentEdit(sets=((3, float("nan")),)),
               generation.LatentEdit(scales=((1, float("inf")),))):
    with pytest.raises(generation.GenerationError, match="must be finite"):
      generation.tweak(backend, synth_song(1.0), edit)
  for edit in (generation.LatentEdit(sets=((3, 1e39),)),
               generation.LatentEdit(max_out_dims=(3,), max_out_stddevs=1e39),
               generation.LatentEdit(attributes=(("up", -2000.0),))):
    with pytest.raises(generation.GenerationError, match=r"is beyond ±1000 \(z is in prior"):
      edit.check(z_size, {"up": np.ones(z_size, np.float32)})
  with pytest.raises(generation.GenerationError, match="max-out stddevs -3: must not be negative"):
    generation.LatentEdit(max_out_dims=(2,), max_out_stddevs=-3.0).check(z_size, {})


@pytest.mark.parametrize("text, expected", [("3:1.5", ("set", 3, 1.5)), ("0:-2", ("set", 0, -2.0)),
                                            ("7:x2", ("scale", 7, 2.0)),
                                            ("7:*0.5", ("scale", 7, 0.5))])
def test_parse_tweak(text, expected):
  assert generation.parse_tweak(text) == expected


@pytest.mark.parametrize("text", ["3", "a:1", "3:", ":1", "3:x", "3:one", "1_0:2",
                                  "\u0663:1"])
def test_parse_tweak_rejects_malformed_text(text):
  with pytest.raises(generation.GenerationError, match=repr(text)):
    generation.parse_tweak(text)


def test_parse_attribute():
  assert generation.parse_attribute("jazz:1.5") == ("jazz", 1.5)
  assert generation.parse_attribute("hip:hop:-1") == ("hip:hop", -1.0)
  assert generation.parse_attribute(" ambient:1") == (" ambient", 1.0)   # a folder's own name
  edit = generation.LatentEdit(attributes=(("ambient", 1.0),))
  with pytest.raises(generation.GenerationError,
                     match=r"unknown attribute 'ambient' \(this checkpoint has: ' ambient', jazz\)"):
    edit.check(2, {" ambient": np.zeros(2), "jazz": np.zeros(2)})
  for text in ("jazz", ":1", "jazz:much"):
    with pytest.raises(generation.GenerationError):
      generation.parse_attribute(text)


@pytest.mark.parametrize("output_format", generation.OUTPUT_FORMATS)
def test_each_output_format_decodes_back_to_the_expected_length(backend, tmp_path,
                                                                output_format):
  song = synth_song(1.3, seed=9)
  result = generation.reconstruct(backend, song)
  paths = generation.output_paths(tmp_path / "out", "reconstruct", 1, output_format,
                                  "2024-01-02_030405")
  assert paths[0].name == f"reconstruct_2024-01-02_030405-000-of-001.{output_format}"
  generation.write_outputs(result, paths)
  decoded = audio_io.read_audio(paths[0], SAMPLE_RATE_HZ)
  assert len(decoded) == len(song)
  tolerance = {"wav": 1e-4, "flac": 1e-4, "mp3": 0.1}[output_format]
  assert np.abs(decoded - result.waveforms[0]).max() < tolerance
  assert sorted(p.name for p in paths[0].parent.iterdir()) == [paths[0].name]


def test_existing_outputs_and_inputs_are_never_overwritten(backend, tmp_path):
  result = generation.sample(backend, num_outputs=2, seed=1)
  paths = generation.output_paths(tmp_path, "sample", 2, "wav", "2024-01-02_030405")
  paths[1].write_bytes(b"earlier output")
  with pytest.raises(generation.GenerationError, match="already exists"):
    generation.check_outputs(paths, [], overwrite=False)
  with pytest.raises(audio_io.AudioWriteError, match="already exists"):
    generation.write_outputs(result, paths)
  assert paths[1].read_bytes() == b"earlier output"
  with pytest.raises(generation.GenerationError, match="is one of the inputs"):
    generation.check_outputs(paths, [paths[1]], overwrite=True)
  assert paths[1].read_bytes() == b"earlier output"
  generation.check_outputs(paths, [], overwrite=True)
  generation.write_outputs(result, paths, overwrite=True)
  assert len(audio_io.read_audio(paths[1], SAMPLE_RATE_HZ)) == backend.config.clip_samples
  assert not [p for p in tmp_path.iterdir() if "partial" in p.name]


def test_runs_started_in_the_same_second_claim_different_names(tmp_path):
  """`for f in *.mp3; do wave_music_vae_generate ... & done` starts several runs in one second:
  each writes its own files instead of refusing (or, with --overwrite, replacing) another's."""
  stamp = "2024-01-02_030405"
  claim = functools.partial(generation.claimed_outputs, tmp_path, "reconstruct", 1, "wav",
                            stamp, True)
  first_paths = generation.output_paths(tmp_path, "reconstruct", 1, "wav", stamp)
  existed = generation.check_outputs(first_paths, [], overwrite=False)
  with claim(existed) as (first, first_plot), claim(existed) as (second, second_plot):
    assert first == first_paths and first_plot.name == f"reconstruct_{stamp}.png"
    assert [p.name for p in second] == [f"reconstruct_{stamp}-2-000-of-001.wav"]
    assert second_plot.name == f"reconstruct_{stamp}-2.png"
    first[0].write_bytes(b"the first run's song")
  # The first run has finished (its claim is gone): a run that checked its names before
  # that song was written does not take them, even with --overwrite.
  with claim(existed) as (third, _):
    assert [p.name for p in third] == [f"reconstruct_{stamp}-2-000-of-001.wav"]
  # A file that was there when the run checked, with --overwrite, is the user's to replace.
  with claim(generation.check_outputs(first_paths, [], overwrite=True)) as (fourth, _):
    assert fourth == first_paths
  assert sorted(p.name for p in tmp_path.iterdir()) == [first[0].name]  # no claim left


CLAIM_THEN_WAIT = """
import sys, time
from wave_music_vae import generation, paths as paths_lib
with generation.claimed_outputs(sys.argv[1], "sample", 1, "wav", "2024-01-02_030405", True,
                                ()) as (paths, plot):
  for path in paths + [plot]:   # written as write_audio and the plot write them
    paths_lib.temporary_beside(path).write_bytes(b"half a file")
  print(paths[0].name, flush=True)
  time.sleep(600)
"""


def test_the_claim_of_a_killed_run_is_removed_and_its_name_used_again(tmp_path):
  """SIGKILL leaves a run's claim file and its half-written temporary files, but the system
  lets go of the claim's lock: the next run into the folder removes them and may take the
  claim's name. A live run's claim is kept, and so are files of names it does not claim."""
  stamp = "2024-01-02_030405"
  claim = functools.partial(generation.claimed_outputs, tmp_path, "sample", 1, "wav", stamp,
                            False, ())
  others = [f".sample_{stamp}-2-000-of-001.partial-0123456789ab.wav",  # another run's name
            ".notes.partial-0123456789ab.txt"]
  for name in others:
    (tmp_path / name).write_bytes(b"not the killed run's")
  holder = subprocess.Popen([sys.executable, "-c", CLAIM_THEN_WAIT, str(tmp_path)],
                            stdout=subprocess.PIPE, text=True)
  try:
    assert holder.stdout.readline().strip() == f"sample_{stamp}-000-of-001.wav"
    with claim() as (paths, _):
      assert paths[0].name == f"sample_{stamp}-2-000-of-001.wav"
    left = sorted(re.sub(r"partial-\w{12}", "partial-X", p.name) for p in tmp_path.iterdir()
                  if p.name not in others)
    assert left == [f".sample_{stamp}-000-of-001.partial-X.wav", f".sample_{stamp}.claim",
                    f".sample_{stamp}.partial-X.png"]
  finally:
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
  (tmp_path / ".reconstruct_2023-05-06_070809-2.claim").touch()  # another second's, abandoned
  (tmp_path / ".notes.claim").touch()                             # not a claim of ours
  with claim() as (paths, _):
    assert paths[0].name == f"sample_{stamp}-000-of-001.wav"
  assert sorted(p.name for p in tmp_path.iterdir()) == sorted(others + [".notes.claim"])
