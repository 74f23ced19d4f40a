"""Remote paths: `scheme://` run directories keep their scheme and go through tf.io.gfile."""

import errno
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


def test_remote_files_are_written_whole_read_and_removed_through_gfile(tmp_path, remote_root):
  folder = paths.as_path(f"{remote_root}/a/b")
  assert not folder.exists() and not folder.is_dir()
  folder.mkdir(parents=True, exist_ok=True)
  assert folder.is_dir() and not folder.is_file()
  with pytest.raises(FileExistsError):
    folder.mkdir()
  target = paths.write_text_atomically(folder / "x.json", "{}")
  paths.write_text_atomically(target, '{"a": 1}')         # replaced whole
  assert target.is_file() and target.read_text() == '{"a": 1}'
  assert [p.name for p in folder.iterdir()] == ["x.json"]  # no temporary file left
  (tmp_path / "tree" / "sub").mkdir(parents=True)
  (tmp_path / "tree" / "song.txt").write_text("la")
  (tmp_path / "tree" / "sub" / "verse.txt").write_text("lo")
  paths.upload_tree(tmp_path / "tree", folder)
  assert (folder / "song.txt").read_text() == "la"
  assert (folder / "sub" / "verse.txt").read_text() == "lo"
  with pytest.raises(OSError):                            # no overwrite unless asked
    paths.upload_tree(tmp_path / "tree", folder)
  assert (folder / "song.txt").read_text() == "la"       # a refused upload removes nothing
  assert sorted(p.name for p in folder.iterdir() if p.is_file()) == ["song.txt", "x.json"]
  with pytest.raises(FileNotFoundError, match=f"^{folder}/nope: no such file or folder"):
    (folder / "nope").read_text()
  target.unlink()
  target.unlink(missing_ok=True)
  with pytest.raises(FileNotFoundError):
    target.unlink()
  assert sorted(p.name for p in folder.iterdir() if p.is_file()) == ["song.txt"]


def test_a_local_atomic_write_leaves_no_temporary_file_even_when_it_fails(tmp_path, monkeypatch):
  paths.write_text_atomically(tmp_path / "config.json", "{}")
  monkeypatch.setattr(paths, "replace", lambda *_: (_ for _ in ()).throw(OSError("disk full")))
  with pytest.raises(OSError, match="disk full"):
    paths.write_text_atomically(tmp_path / "config.json", '{"a": 1}')
  assert os.listdir(tmp_path) == ["config.json"] and (tmp_path / "config.json").read_text() == "{}"


def test_a_failed_upload_removes_what_it_added_and_raises_the_failure(tmp_path, monkeypatch):
  """A failure mid-upload leaves no partial copy (an export's empty version folder was
  refused as existing by the next try), and a failing clean-up does not hide it."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tree = tmp_path / "tree"
  (tree / "variables").mkdir(parents=True)
  for name in ("variables/variables.data", "variables/variables.index", "saved_model.pb"):
    (tree / name).write_text(name)
  remote = paths.as_path(f"ram://{tmp_path.name}/exports/m/1")
  copy = tf.io.gfile.copy
  copied = []

  def fail_on_the_third_file(source, target, overwrite=False):
    if len(copied) == 2:
      raise tf.errors.UnavailableError(None, None, "connection reset")
    copied.append(Path(source).name)
    copy(source, target, overwrite)
  monkeypatch.setattr(tf.io.gfile, "copy", fail_on_the_third_file)
  with pytest.raises(OSError, match="connection reset"):
    paths.upload_tree(tree, remote, last=("saved_model.pb",))
  assert copied == ["variables.data", "variables.index"]      # saved_model.pb comes last
  assert not remote.exists() and not tf.io.gfile.exists(str(remote.parent) + "/1")
  # Into a folder that was already there, with a file of its own: only what was added goes.
  remote.mkdir(parents=True)
  (remote / "keep.txt").write_text("mine")
  copied.clear()
  with pytest.raises(OSError, match="connection reset"):
    paths.upload_tree(tree, remote, last=("saved_model.pb",))
  assert sorted(p.name for p in remote.iterdir() if p.is_file()) == ["keep.txt"]


@pytest.mark.parametrize("hard_links", [True, False])
def test_moving_into_place_replaces_a_file_only_when_told_to(tmp_path, monkeypatch, hard_links):
  """Without overwrite, a file made after the caller checked is kept: hard-linking fails on
  it; where the file system has no hard links, a check just before the rename."""
  def refuse(*_):
    raise PermissionError(errno.EPERM, "Operation not permitted")
  if not hard_links:
    monkeypatch.setattr(os, "link", refuse)
  path = tmp_path / "eval.json"
  tmp = paths.temporary_beside(path)
  tmp.write_text("new")
  paths.move_into_place(tmp, path, overwrite=False)
  assert path.read_text() == "new" and not tmp.exists()
  tmp.write_text("newer")
  with pytest.raises(FileExistsError):
    paths.move_into_place(tmp, path, overwrite=False)
  assert path.read_text() == "new"
  paths.move_into_place(tmp, path, overwrite=True)
  assert path.read_text() == "newer" and sorted(os.listdir(tmp_path)) == ["eval.json"]
