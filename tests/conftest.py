"""Shared fixtures: synthesized songs written to disk, and a tiny model trained on them.

Everything is real: audio files are written with libsndfile and decoded back, and
the tiny model is trained with the real training loop.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The commands under test are the console scripts installed beside this interpreter, also
# when pytest runs as `venv/bin/python -m pytest` without the virtual environment activated.
os.environ["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), os.environ["PATH"]])

import numpy as np  # pylint: disable=g-import-not-at-top
import pytest
import soundfile

from wave_music_vae import config as config_lib

SAMPLE_RATE_HZ = 22050


def synth_song(seconds: float, sample_rate_hz: int = SAMPLE_RATE_HZ, base_hz: float = 220.0,
               seed: int = 0, channels: int = 1) -> np.ndarray:
  """A few seconds of 'music': a chord of harmonic tones with notes changing twice a second.

  Returns float32 [samples] (or [samples, channels]) in [-0.5, 0.5].
  """
  rng = np.random.default_rng(seed)
  n = int(round(seconds * sample_rate_hz))
  note_len = sample_rate_hz // 2
  pitches = base_hz * 2 ** (rng.integers(0, 12, size=n // note_len + 1) / 12)
  f0 = np.repeat(pitches, note_len)[:n]
  phase = 2 * np.pi * np.cumsum(f0) / sample_rate_hz
  envelope = np.exp(-3.0 * (np.arange(n) % note_len) / sample_rate_hz)
  y = sum(np.sin(k * phase) / k for k in (1, 2, 3)) * envelope
  y = (0.4 * y / np.max(np.abs(y))).astype(np.float32)
  if channels > 1:
    y = np.stack([y * (1.0 - 0.1 * c) for c in range(channels)], axis=1)
  return y


@pytest.fixture(scope="session")
def tiny_config() -> config_lib.Config:
  return config_lib.load_config("tiny")


@pytest.fixture(scope="session")
def song_folder(tmp_path_factory):
  """Two labels ('low', 'high') x 3 WAV songs of 3 s each, plus nothing else."""
  root = tmp_path_factory.mktemp("songs")
  for label, base_hz in (("low", 110.0), ("high", 440.0)):
    (root / label).mkdir()
    for i in range(3):
      soundfile.write(str(root / label / f"song {i}.wav"),
                      synth_song(3.0, base_hz=base_hz, seed=i + int(base_hz)), SAMPLE_RATE_HZ)
  return root


@pytest.fixture(scope="session")
def trained_run_dir(tmp_path_factory, song_folder, tiny_config):
  """A run directory holding the tiny model trained 150 steps on `song_folder`."""
  from wave_music_vae import data, training  # pylint: disable=g-import-not-at-top
  run_dir = tmp_path_factory.mktemp("tiny_run")
  training.seed_everything(tiny_config.seed)
  training.prepare_run_dir(run_dir, tiny_config)
  trainer = training.Trainer(tiny_config, run_dir)
  source = data.DatasetSource(str(song_folder), "folder")
  trainer.train(source.dataset(tiny_config, "train", cache=True), 150, progress=False)
  return run_dir


@pytest.fixture
def remote_root(tmp_path, monkeypatch):
  """A fresh `ram://` folder (TensorFlow's in-memory file system, standing for gs://), with
  the test run in an empty local working folder that must stay empty: a remote path taken
  for a local one (pathlib folds `ram://x` to `ram:/x`) would make a folder named `ram:`."""
  working = tmp_path / "working_directory"
  working.mkdir()
  monkeypatch.chdir(working)
  yield f"ram://{tmp_path.name}"
  assert os.listdir(working) == [], "a remote path was written as a local folder"
