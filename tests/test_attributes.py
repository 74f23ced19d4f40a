"""Attribute vectors over a labelled folder, in the library and through the two commands."""

import json
import shutil
import subprocess

import numpy as np
import pytest
import soundfile
import tensorflow as tf

from conftest import SAMPLE_RATE_HZ, synth_song
from wave_music_vae import attributes
from wave_music_vae import audio_io
from wave_music_vae import checkpoints
from wave_music_vae import data
from wave_music_vae import inference
from wave_music_vae import paths


@pytest.fixture(scope="module")
def backend(trained_run_dir):
  return inference.load_backend(run_dir=str(trained_run_dir))


def _mean_code_per_label(backend, song_folder) -> dict:
  """Means of mu over each label's 1-s clips, encoded here clip by clip from decoded files."""
  clip = backend.config.clip_samples
  means = {}
  for label in ("low", "high"):
    clips = []
    for path in sorted((song_folder / label).iterdir()):
      song = audio_io.read_audio(path, SAMPLE_RATE_HZ)
      clips += [song[start:start + clip] for start in range(0, len(song) - clip + 1, clip)]
    _, mu, _ = backend.encode(np.stack(clips))
    means[label] = (mu.mean(axis=0), len(clips))
  return means


def test_vectors_are_label_means_minus_the_overall_mean(backend, song_folder):
  files = data.list_audio_files(song_folder, "folder")
  result = attributes.compute_attribute_vectors(backend, files, clips_per_file=3, batch_size=4)
  assert sorted(result.vectors) == ["high", "low"]
  assert result.counts == {"high": 9, "low": 9}     # 3 songs x 3 s, 1-s clips.
  assert result.unlabelled_files == 0 and len(result.skipped) == 0
  expected = _mean_code_per_label(backend, song_folder)
  overall = (expected["low"][0] + expected["high"][0]) / 2
  for label in ("low", "high"):
    np.testing.assert_allclose(result.vectors[label], expected[label][0] - overall, atol=1e-4)
  weighted_sum = sum(result.counts[k] * result.vectors[k] for k in result.vectors)
  np.testing.assert_allclose(weighted_sum, 0.0, atol=1e-4)
  assert np.linalg.norm(result.vectors["high"] - result.vectors["low"]) > 0.5


def test_unlabelled_and_unreadable_files_are_left_out(backend, song_folder, tmp_path):
  root = tmp_path / "songs"
  shutil.copytree(song_folder, root)
  soundfile.write(str(root / "top level.wav"), synth_song(2.0, seed=30), SAMPLE_RATE_HZ)
  (root / "low" / "broken.wav").write_bytes(b"RIFF not really a wave file")
  result = attributes.compute_attribute_vectors(backend, data.list_audio_files(root, "folder"),
                                                clips_per_file=2)
  assert result.unlabelled_files == 1
  assert len(result.skipped) == 1 and "broken.wav" in next(iter(result.skipped.causes))
  assert result.counts == {"high": 6, "low": 6}


def test_silent_clips_do_not_move_a_label_s_vector(backend, song_folder, tmp_path):
  """A silent file (or a track's silent ending) encodes to codes that say nothing of its
  label's music: left out and counted, the vectors are those of the music alone."""
  root = tmp_path / "songs"
  shutil.copytree(song_folder, root)
  files = data.list_audio_files(root, "folder")
  music_only = attributes.compute_attribute_vectors(backend, files, clips_per_file=2)
  soundfile.write(str(root / "low" / "silence.wav"), np.zeros(3 * SAMPLE_RATE_HZ, np.float32),
                  SAMPLE_RATE_HZ)
  with_silence = attributes.compute_attribute_vectors(
      backend, data.list_audio_files(root, "folder"), clips_per_file=2)
  assert with_silence.silent_clips == 2 and with_silence.counts == music_only.counts
  for label in ("low", "high"):
    np.testing.assert_allclose(with_silence.vectors[label], music_only.vectors[label],
                               atol=1e-5)


def test_one_label_is_not_enough(backend, song_folder):
  files = [f for f in data.list_audio_files(song_folder, "folder") if f.label == "low"]
  with pytest.raises(data.DataError, match="at least two labels; found 1 label"):
    attributes.compute_attribute_vectors(backend, files)


def _run(command, *args):
  return subprocess.run([command, *map(str, args)], capture_output=True, text=True, timeout=300,
                        check=False)


def test_attributes_command_saves_beside_the_checkpoint_and_generate_lists_them(
    trained_run_dir, song_folder, tmp_path):
  run_dir = tmp_path / "run"
  shutil.copytree(trained_run_dir, run_dir)
  done = _run("wave_music_vae_attributes", f"--run_dir={run_dir}",
              f"--examples_path={song_folder}", "--clips_per_file=2")
  assert done.returncode == 0, done.stderr
  saved = json.loads((run_dir / checkpoints.ATTRIBUTES_FILE).read_text())
  assert saved["counts"] == {"high": 6, "low": 6}
  assert saved["step"] == checkpoints.load(run_dir=str(run_dir)).steps   # the newest checkpoint's
  z_size = checkpoints.load(run_dir=str(run_dir)).config.z_size
  assert set(checkpoints.load_attributes(run_dir, z_size)) == {"high", "low"}
  assert "wrote 2 attribute vector(s)" in done.stdout

  again = _run("wave_music_vae_attributes", f"--run_dir={run_dir}",
               f"--examples_path={song_folder}")
  assert again.returncode == 1
  assert again.stderr.strip().splitlines()[-1].startswith(
      f"wave_music_vae_attributes: error: {run_dir / checkpoints.ATTRIBUTES_FILE}: already exists")
  assert "Traceback" not in again.stderr
  assert json.loads((run_dir / checkpoints.ATTRIBUTES_FILE).read_text()) == saved

  listed = _run("wave_music_vae_generate", f"--run_dir={run_dir}", "--list_attributes")
  assert listed.returncode == 0, listed.stderr
  assert "2 attribute vector(s)" in listed.stdout
  assert "  high  (norm" in listed.stdout and "  low  (norm" in listed.stdout
  # Listing generates nothing: flags asking for generation are refused, not silently dropped.
  asked = _run("wave_music_vae_generate", f"--run_dir={run_dir}", "--list_attributes",
               "--mode=sample", f"--output_dir={tmp_path / 'out'}")
  assert asked.returncode == 1 and asked.stderr.strip().splitlines()[-1] == (
      "wave_music_vae_generate: error: --list_attributes lists the model's attribute vectors "
      "and generates nothing; drop --mode, --output_dir")
  assert not (tmp_path / "out").exists()


def test_attributes_are_written_to_and_read_from_a_remote_run_dir(
    trained_run_dir, song_folder, remote_root):
  """attributes.json in a `scheme://` run directory (ram://, standing for gs://): written
  whole through tf.io.gfile (a temporary file, then a rename), and read back with the run's
  newest checkpoint (**was**: written to a local folder named `ram:`)."""
  run_dir = f"{remote_root}/runs/tiny"
  paths.upload_tree(trained_run_dir, paths.as_path(run_dir))
  before = set(tf.io.gfile.listdir(run_dir))
  loaded = checkpoints.load(run_dir=run_dir)
  assert loaded.attributes == {} and str(loaded.directory) == run_dir
  assert not (loaded.directory / checkpoints.ATTRIBUTES_FILE).exists()  # the command's check
  result = attributes.compute_attribute_vectors(
      inference.KerasBackend(loaded), data.list_audio_files(song_folder, "folder"),
      clips_per_file=2)
  path = checkpoints.save_attributes(loaded.directory, result.vectors, result.counts,
                                     loaded.steps)
  assert str(path) == f"{run_dir}/{checkpoints.ATTRIBUTES_FILE}" and path.exists()
  assert set(tf.io.gfile.listdir(run_dir)) - before == {checkpoints.ATTRIBUTES_FILE}
  with tf.io.gfile.GFile(str(path)) as f:
    saved = json.load(f)
  assert saved["counts"] == {"high": 6, "low": 6} and saved["step"] == loaded.steps
  again = checkpoints.load(run_dir=run_dir)
  assert sorted(again.attributes) == ["high", "low"]
  for label, vector in result.vectors.items():
    np.testing.assert_allclose(again.attributes[label], vector, rtol=1e-6)
