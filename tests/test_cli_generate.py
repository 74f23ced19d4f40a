"""`wave_music_vae_generate` end to end: each mode in a subprocess on the tiny trained model."""

import re
import shutil
import subprocess

import numpy as np
import pytest
import soundfile

from conftest import SAMPLE_RATE_HZ, synth_song
from wave_music_vae import audio_io
from wave_music_vae import checkpoints
from wave_music_vae import generation
from wave_music_vae import inference
from wave_music_vae.examples import example_paths

PROGRAM = "wave_music_vae_generate"


def _generate(*args):
  return subprocess.run([PROGRAM, *map(str, args)], capture_output=True, text=True, timeout=300,
                        check=False)


def _outputs(folder, mode, num_outputs, output_format):
  """The files a run wrote, checked against music_vae_generate's naming."""
  names = sorted(p.name for p in folder.iterdir())
  pattern = (rf"{mode}_\d{{4}}-\d\d-\d\d_\d{{6}}-(\d{{3}})-of-{num_outputs:03d}"
             rf"\.{output_format}")
  audio = [n for n in names if re.fullmatch(pattern, n)]
  assert [int(re.fullmatch(pattern, n).group(1)) for n in audio] == list(range(num_outputs)), names
  return [folder / n for n in audio], names


def _one_line_error(done, message_start: str):
  assert done.returncode == 1, (done.stdout, done.stderr)
  assert "Traceback" not in done.stderr
  last = done.stderr.strip().splitlines()[-1]
  assert last.startswith(f"{PROGRAM}: error: {message_start}"), last


@pytest.fixture(scope="module")
def run_dir(trained_run_dir, tmp_path_factory):
  """A copy of the tiny run with attribute vectors 'up' and 'down' saved beside it."""
  copy = tmp_path_factory.mktemp("cli") / "run"
  shutil.copytree(trained_run_dir, copy)
  z_size = inference.load_backend(run_dir=str(copy)).config.z_size
  up = np.linspace(-1.0, 1.0, z_size).astype(np.float32)
  checkpoints.save_attributes(copy, {"up": up, "down": -up}, {"up": 3, "down": 3})
  return copy


@pytest.fixture(scope="module")
def backend(run_dir):
  return inference.load_backend(run_dir=str(run_dir))


@pytest.fixture(scope="module")
def input_song(tmp_path_factory):
  path = tmp_path_factory.mktemp("inputs") / "my song.wav"
  soundfile.write(str(path), synth_song(1.7, seed=21), SAMPLE_RATE_HZ)
  return path


def test_interpolate_shorthand_uses_the_example_clips_and_plots(run_dir, tmp_path):
  out = tmp_path / "out"
  done = _generate(f"--run_dir={run_dir}", "--interpolate", "--num_outputs=3", "--max_seconds=2.5",
                   "--plot", f"--output_dir={out}")
  assert done.returncode == 0, done.stderr
  files, names = _outputs(out, "interpolate", 3, "wav")
  for path in files:
    assert len(audio_io.read_audio(path, SAMPLE_RATE_HZ)) == int(2.5 * SAMPLE_RATE_HZ)
  stamp = files[0].name.split("-000-of-")[0]
  assert names == sorted([p.name for p in files] + [f"{stamp}.png"])
  assert "wrote 3 song(s)" in done.stdout  # the plot is not counted as a song
  assert f"and their spectrograms: {stamp}.png" in done.stdout
  assert all(p.name in done.stdout for p in example_paths())


def test_sample_with_a_seed_writes_mp3_clips(run_dir, backend, tmp_path):
  done = _generate(f"--run_dir={run_dir}", "--mode=sample", "--num_outputs=2", "--seed=3",
                   "--temperature=0.7", "--output_format=mp3", f"--output_dir={tmp_path}")
  assert done.returncode == 0, done.stderr
  files, _ = _outputs(tmp_path, "sample", 2, "mp3")
  expected = generation.sample(backend, num_outputs=2, temperature=0.7, seed=3).waveforms
  for path, waveform in zip(files, expected):
    decoded = audio_io.read_audio(path, SAMPLE_RATE_HZ)
    assert len(decoded) == backend.config.clip_samples
    assert np.abs(decoded - waveform).max() < 0.1


def test_reconstruct_writes_flac_equal_to_the_library_result(run_dir, backend, input_song,
                                                             tmp_path):
  done = _generate(f"--run_dir={run_dir}", "--mode=reconstruct", f"--input_audio_1={input_song}",
                   "--output_format=flac", f"--output_dir={tmp_path}")
  assert done.returncode == 0, done.stderr
  (path,), names = _outputs(tmp_path, "reconstruct", 1, "flac")
  assert names == [path.name]
  song = audio_io.read_audio(input_song, SAMPLE_RATE_HZ)
  decoded = audio_io.read_audio(path, SAMPLE_RATE_HZ)
  assert len(decoded) == len(song)
  expected = generation.reconstruct(backend, song).waveforms[0]
  assert np.abs(decoded - expected).max() < 2e-3


def test_refine_steps_reconstruct_like_the_library_and_only_where_something_is_encoded(
    run_dir, backend, input_song, tmp_path):
  done = _generate(f"--run_dir={run_dir}", "--mode=reconstruct", f"--input_audio_1={input_song}",
                   "--refine_steps=8", f"--output_dir={tmp_path}")
  assert done.returncode == 0, done.stderr
  (path,), _ = _outputs(tmp_path, "reconstruct", 1, "wav")
  song = audio_io.read_audio(input_song, SAMPLE_RATE_HZ)
  decoded = audio_io.read_audio(path, SAMPLE_RATE_HZ)
  refined = generation.reconstruct(backend, song, refine_steps=8).waveforms[0]
  np.testing.assert_allclose(decoded, refined, atol=2e-3)
  assert np.abs(decoded - generation.reconstruct(backend, song).waveforms[0]).max() > 0.01
  done = _generate(f"--run_dir={run_dir}", "--mode=sample", "--refine_steps=8",
                   f"--output_dir={tmp_path / 'sampled'}")
  _one_line_error(done, "--refine_steps refines encoded inputs; --mode=sample has none")


def test_tweak_applies_every_edit_flag(run_dir, backend, input_song, tmp_path):
  done = _generate(f"--run_dir={run_dir}", "--mode=tweak", f"--input_audio_1={input_song}",
                   "--tweak=5:2.5", "--tweak=1:x-1", "--max_out=6", "--max_out_stddevs=2",
                   "--flatten=0.2", "--attribute=up:1.5", f"--output_dir={tmp_path}")
  assert done.returncode == 0, done.stderr
  (path,), _ = _outputs(tmp_path, "tweak", 1, "wav")
  song = audio_io.read_audio(input_song, SAMPLE_RATE_HZ)
  decoded = audio_io.read_audio(path, SAMPLE_RATE_HZ)
  edit = generation.LatentEdit(sets=((5, 2.5),), scales=((1, -1.0),), max_out_dims=(6,),
                               max_out_stddevs=2.0, flatten_factor=0.2,
                               attributes=(("up", 1.5),))
  np.testing.assert_allclose(decoded, generation.tweak(backend, song, edit).waveforms[0],
                             atol=2e-3)
  reconstruction = generation.reconstruct(backend, song).waveforms[0]
  assert np.abs(decoded - reconstruction).max() > 0.05


def test_an_edit_of_zero_is_the_reconstruction_and_no_edit_is_refused(run_dir, input_song,
                                                                      tmp_path):
  done = _generate(f"--run_dir={run_dir}", "--mode=tweak", f"--input_audio_1={input_song}",
                   "--flatten=0", f"--output_dir={tmp_path / 'zero'}")
  assert done.returncode == 0, done.stderr
  done = _generate(f"--run_dir={run_dir}", "--mode=reconstruct", f"--input_audio_1={input_song}",
                   f"--output_dir={tmp_path / 'plain'}")
  assert done.returncode == 0, done.stderr
  (flattened_by_0,), _ = _outputs(tmp_path / "zero", "tweak", 1, "wav")
  (reconstruction,), _ = _outputs(tmp_path / "plain", "reconstruct", 1, "wav")
  np.testing.assert_array_equal(audio_io.read_audio(flattened_by_0, SAMPLE_RATE_HZ),
                                audio_io.read_audio(reconstruction, SAMPLE_RATE_HZ))
  done = _generate(f"--run_dir={run_dir}", "--mode=tweak", f"--input_audio_1={input_song}",
                   f"--output_dir={tmp_path / 'none'}")
  _one_line_error(done, "--mode=tweak needs at least one of --tweak, --max_out, --flatten")


def test_bad_input_file_is_one_line_naming_it(run_dir, tmp_path):
  missing = tmp_path / "no such song.wav"
  done = _generate(f"--run_dir={run_dir}", "--mode=reconstruct", f"--input_audio_1={missing}",
                   f"--output_dir={tmp_path / 'out'}")
  _one_line_error(done, f"{missing}: no such file")
  assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args,message", [
    (["--mode=tweak", "--tweak=5:loud"], "--tweak: '5:loud': DIM must be an integer and VALUE"),
    (["--mode=tweak", "--tweak=3:1e39"], "latent edit value 1e+39 is beyond ±1000"),
    (["--mode=reconstruct", "--max_seconds=nan"], "--max_seconds must be a positive, finite"),
    (["--mode=reconstruct", "--max_seconds=inf"], "--max_seconds must be a positive, finite"),
    (["--mode=sample", "--temperature=1e39"], "--temperature must be in (0, 100]"),
    (["--mode=sample", "--seed=9223372036854775808"], "--seed must be in [0, 2**31 - 1]"),
    (["--mode=sample", "--griffin_lim_iters=1001"],
     "--griffin_lim_iters must be in [1, 1000] (an export refuses more)"),
    (["--mode=sample", "--num_outputs=65", "--plot"],
     "--plot draws one panel per output; at most 64 (got --num_outputs=65)"),
])
def test_bad_flags_are_named_before_any_work(run_dir, tmp_path, args, message):
  done = _generate(f"--run_dir={run_dir}", *args, f"--output_dir={tmp_path}")
  _one_line_error(done, message)
  assert not list(tmp_path.iterdir())


def test_missing_shipped_checkpoint_is_a_clear_error(tmp_path, monkeypatch):
  empty = tmp_path / "no checkpoints"
  empty.mkdir()
  monkeypatch.setenv(checkpoints.CHECKPOINTS_ENV, str(empty))
  out = tmp_path / "out"
  done = _generate("--interpolate", f"--output_dir={out}")
  _one_line_error(done, "no --checkpoint_file, --run_dir or --saved_model given, and the "
                        f"shipped checkpoint {empty / checkpoints.DEFAULT_CHECKPOINT} is not "
                        "installed")
  assert not out.exists()


@pytest.mark.slow
@pytest.mark.skipif(not (checkpoints.default_checkpoint() / checkpoints.WEIGHTS_FILE).is_file(),
                    reason="the shipped checkpoint is not installed yet")
def test_quick_start_runs_on_the_shipped_checkpoint_and_examples(tmp_path):
  done = _generate("--interpolate", f"--output_dir={tmp_path}")
  assert done.returncode == 0, done.stderr
  files, _ = _outputs(tmp_path, "interpolate", 5, "wav")
  length = min(len(audio_io.read_audio(p, SAMPLE_RATE_HZ)) for p in example_paths())
  assert all(len(audio_io.read_audio(p, SAMPLE_RATE_HZ)) == length for p in files)
