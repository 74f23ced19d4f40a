"""Run directories and checkpoint folders that may be remote (`gs://`, `s3://`, `ram://`, ...).

`pathlib.Path` reads `gs://bucket/runs/x` as the local path `gs:/bucket/runs/x`: the
run would land in a folder named `gs:` in the working directory. `as_path` gives a
`Path` for a local path, unchanged, and a `RemotePath` for a `scheme://` one: the
few `Path` operations the run-directory code uses (`/`, `name`, `parent`,
`with_name`, `joinpath`, `exists`, `is_dir`, `is_file`, `mkdir`, `iterdir`, `read_text`,
`write_text`, `unlink`), done with `tf.io.gfile`, so with any file system TensorFlow
has. Its errors are raised as `OSError`s (FileNotFoundError, PermissionError), as a
local path's would be, so callers catch both alike.

A `RemotePath` has no `__fspath__`: handed by mistake to `open` or `os.*`, it fails
at once rather than making a local `gs:` folder.
"""

import contextlib
import os
import uuid
from pathlib import Path
from typing import Iterator, Union

from wave_music_vae.output_locations import is_remote


@contextlib.contextmanager
def _as_os_errors(path) -> Iterator[None]:
  """Re-raises TensorFlow's file-system errors about `path` as the OSError a local path gives."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  try:
    yield
  except tf.errors.NotFoundError as e:
    raise FileNotFoundError(f"{path}: no such file or folder ({e.message})") from None
  except tf.errors.PermissionDeniedError as e:
    raise PermissionError(f"{path}: permission denied ({e.message})") from None
  except tf.errors.OpError as e:
    raise OSError(f"{path}: {type(e).__name__}: {e.message}") from None


class RemotePath:
  """A `scheme://...` path whose file operations go through `tf.io.gfile`."""

  def __init__(self, path):
    path = str(path)
    scheme, rest = path.split("://", 1)
    self._path = f"{scheme}://{rest.rstrip('/')}" if rest.strip("/") else f"{scheme}://{rest}"

  # -- pure path operations -------------------------------------------------------
  def __str__(self):
    return self._path

  def __repr__(self):
    return f"RemotePath({self._path!r})"

  def __eq__(self, other):
    return isinstance(other, RemotePath) and other._path == self._path

  def __hash__(self):
    return hash(self._path)

  def __truediv__(self, part):
    return RemotePath(f"{self._path}/{str(part).strip('/')}")

  def joinpath(self, *parts) -> "RemotePath":
    path = self
    for part in parts:
      path = path / part
    return path

  def _root_and_parts(self):
    scheme, rest = self._path.split("://", 1)
    return f"{scheme}://", rest.split("/") if rest else []

  @property
  def name(self) -> str:
    _, parts = self._root_and_parts()
    return parts[-1] if parts else ""

  @property
  def parent(self) -> "RemotePath":
    root, parts = self._root_and_parts()
    return RemotePath(root + "/".join(parts[:-1])) if parts else self

  def with_name(self, name: str) -> "RemotePath":
    return self.parent / name

  # -- file operations, through tf.io.gfile -----------------------------------------
  @staticmethod
  def _gfile():
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    return tf.io.gfile

  def exists(self) -> bool:
    with _as_os_errors(self):
      return self._gfile().exists(self._path)

  def is_dir(self) -> bool:
    with _as_os_errors(self):
      return self._gfile().isdir(self._path)

  def is_file(self) -> bool:
    return self.exists() and not self.is_dir()

  def mkdir(self, parents: bool = False, exist_ok: bool = False) -> None:
    """Makes the folder (with its parents: object stores have no real folders anyway)."""
    del parents
    if self.exists() and not exist_ok:
      raise FileExistsError(f"{self}: already exists")
    with _as_os_errors(self):
      self._gfile().makedirs(self._path)

  def iterdir(self) -> Iterator["RemotePath"]:
    with _as_os_errors(self):
      names = self._gfile().listdir(self._path)
    return iter([self / name.rstrip("/") for name in names])

  def read_text(self) -> str:
    with _as_os_errors(self), self._gfile().GFile(self._path, "r") as f:
      return f.read()

  def write_text(self, text: str) -> int:
    with _as_os_errors(self), self._gfile().GFile(self._path, "w") as f:
      f.write(text)
    return len(text)

  def unlink(self, missing_ok: bool = False) -> None:
    if missing_ok and not self.exists():
      return
    with _as_os_errors(self):
      self._gfile().remove(self._path)


AnyPath = Union[Path, RemotePath]


def as_path(path) -> AnyPath:
  """`path` as a RemotePath if it is `scheme://...`, else as a pathlib.Path (unchanged)."""
  if isinstance(path, (Path, RemotePath)):
    return path
  return RemotePath(path) if is_remote(path) else Path(path)


def replace(source: AnyPath, target: AnyPath) -> None:
  """Renames `source` to `target`, replacing it: `os.replace` locally, gfile's rename remotely."""
  if isinstance(target, RemotePath) or isinstance(source, RemotePath):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    with _as_os_errors(target):
      tf.io.gfile.rename(str(source), str(target), overwrite=True)
  else:
    os.replace(source, target)


def _temporary_beside(path: AnyPath) -> AnyPath:
  suffix = ".tmp" if isinstance(path, Path) else f".tmp.{uuid.uuid4().hex[:12]}"
  return path.with_name(path.name + suffix)


def copy_file(source, target) -> AnyPath:
  """Copies file `source` to `target` (either may be remote) whole or not at all."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  target = as_path(target)
  tmp = _temporary_beside(target)
  try:
    with _as_os_errors(source):
      tf.io.gfile.copy(str(source), str(tmp), overwrite=True)
    replace(tmp, target)
  finally:
    tmp.unlink(missing_ok=True)
  return target


def write_text_atomically(path, text: str) -> AnyPath:
  """Writes `text` to `path` whole or not at all: a temporary file beside it, then a rename.

  Locally the temporary file is `NAME.tmp`. Remotely it has a unique suffix: workers
  of a multi-worker run writing the same file (config.json) at once each rename their
  own, where a shared name could be renamed away under another's feet.
  """
  path = as_path(path)
  tmp = _temporary_beside(path)
  tmp.write_text(text)
  try:
    replace(tmp, path)
  finally:
    if isinstance(tmp, RemotePath):
      tmp.unlink(missing_ok=True)
  return path
