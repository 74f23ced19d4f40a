"""Remote paths: `scheme://` run directories keep their scheme and go through tf.io.gfile."""

import os
from pathlib import Path

import pytest

from wave_music_vae import paths


def test_remote_paths_keep_their_scheme():
  run = paths.as_path("gs://my-bucket/runs/fma/")
  assert isinstance(run, paths.RemotePath)
  assert str(run) == "gs://my-bucket/runs/fma"           # not pathlib's gs:/my-bucket/...
  assert str(run / "train") == "gs://my-bucket/runs/fma/train"
  assert run.name == "fma" and str(run.parent) == "gs://my-bucket/runs"
  assert str((run / "config.json").with_name("config.json.tmp")) == (
      "gs://my-bucket/runs/fma/config.json.tmp")
  root = run.parent.parent.parent
  assert str(root) == "gs://" and root.parent == root
  assert paths.as_path(run) is run and run == paths.RemotePath("gs://my-bucket/runs/fma")
  assert paths.as_path("runs/x") == Path("runs/x")        # local paths stay pathlib's
  assert paths.as_path("~/runs/x") == Path("~/runs/x")
  with pytest.raises(TypeError):                          # never taken for a local path
    os.fspath(run)


def test_remote_files_are_written_whole_read_and_removed_through_gfile(tmp_path, monkeypatch):
  local = tmp_path / "local"
  local.mkdir()
  monkeypatch.chdir(local)
  folder = paths.as_path(f"ram://{tmp_path.name}/a/b")
  assert not folder.exists() and not folder.is_dir()
  folder.mkdir(parents=True, exist_ok=True)
  assert folder.is_dir() and not folder.is_file()
  with pytest.raises(FileExistsError):
    folder.mkdir()
  target = paths.write_text_atomically(folder / "x.json", "{}")
  paths.write_text_atomically(target, '{"a": 1}')         # replaced whole
  assert target.is_file() and target.read_text() == '{"a": 1}'
  assert [p.name for p in folder.iterdir()] == ["x.json"]  # no temporary file left
  (tmp_path / "song.txt").write_text("la")
  copied = paths.copy_file(tmp_path / "song.txt", folder / "song.txt")
  assert copied.read_text() == "la"
  assert sorted(p.name for p in folder.iterdir()) == ["song.txt", "x.json"]
  with pytest.raises(FileNotFoundError, match=f"^{folder}/nope: no such file or folder"):
    (folder / "nope").read_text()
  target.unlink()
  target.unlink(missing_ok=True)
  with pytest.raises(FileNotFoundError):
    target.unlink()
  assert [p.name for p in folder.iterdir()] == ["song.txt"]
  assert os.listdir(local) == []                          # no local `ram:` folder
