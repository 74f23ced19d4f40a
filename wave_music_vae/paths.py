"""Run directories and checkpoint folders that may be remote (`gs://`, `ram://`).

Any scheme TensorFlow has a file system for works: TF 2.17 itself has `gs://` and the
in-memory `ram://` (the tests'); `s3://` and `hdfs://` come only with tensorflow-io's
file systems (`import tensorflow_io`), which are neither tested nor documented here.

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
import errno
import logging
import os
import re
import uuid
from pathlib import Path
from typing import Iterator, Optional, Sequence, Union



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
# `temporary_beside`'s names; group 1 is the stem of the file written under it.
TEMPORARY_NAME = re.compile(r"\.(.+)\.partial-[0-9a-f]{12}(?:\.[^.]*)?")


def is_remote(path) -> bool:
  """Whether `path` is `scheme://...` rather than a local path."""
  return "://" in str(path)


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


def temporary_beside(path: AnyPath) -> AnyPath:
  """A unique hidden name beside `path`, with its suffix (which writers such as libsndfile
  read the format from), to write it under before renaming it into place:
  `.<stem>.partial-<random><suffix>` (`TEMPORARY_NAME`). Writers of the same file at once
  (the workers of a multi-worker run writing config.json, on NFS or gs://; two generate
  runs) each rename their own."""
  stem, suffix = os.path.splitext(path.name)
  return path.with_name(f".{stem}.partial-{uuid.uuid4().hex[:12]}{suffix}")


def move_into_place(tmp: Path, path: Path, overwrite: bool) -> None:
  """Renames local file `tmp` to `path`. Without `overwrite` an existing `path` is never
  replaced, even one made a moment before: `tmp` is hard-linked as `path`, which fails
  with FileExistsError if it exists, then removed. On a file system without hard links
  (FAT, some network shares) `path` is checked just before the rename instead."""
  if not overwrite:
    try:
      os.link(tmp, path)
    except FileExistsError:
      raise
    except OSError:
      if os.path.lexists(path):
        raise FileExistsError(errno.EEXIST, "File exists", str(path)) from None
    else:
      os.unlink(tmp)
      return
  os.replace(tmp, path)


def write_text_atomically(path, text: str) -> AnyPath:
  """Writes `text` to `path` whole or not at all: a temporary file beside it, then a rename."""
  path = as_path(path)
  tmp = temporary_beside(path)
  try:
    tmp.write_text(text)
    replace(tmp, path)
  finally:
    tmp.unlink(missing_ok=True)
  return path


def upload_tree(local: Path, remote: RemotePath, last: Sequence[str] = (),
                overwrite: bool = False) -> None:
  """Copies the files under local folder `local` to `remote` (`gs://...`), as `gsutil cp -r`.

  Object stores have no folder rename, so a reader may list `remote` before it is
  complete: files named in `last` (e.g. `saved_model.pb`, without which a server does not
  load an export) are copied after the rest. `overwrite` replaces files already there;
  without it an existing one is an error. A failed upload removes what it added (the
  files it made, and `remote` itself if it made it) and raises the failure as an OSError.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  files = sorted((f for f in local.rglob("*") if f.is_file()),
                 key=lambda f: (f.name in last, str(f)))
  made_remote = not remote.exists()
  added = []
  try:
    for source in files:
      target = remote.joinpath(*source.relative_to(local).parts)
      target.parent.mkdir(parents=True, exist_ok=True)
      existed = target.exists()
      with _as_os_errors(target):
        tf.io.gfile.copy(str(source), str(target), overwrite=overwrite)
      if not existed:
        added.append(target)
  except BaseException:
    _remove_quietly(added, remote if made_remote else None)
    raise


def _remove_quietly(files, folder: Optional[RemotePath]) -> None:
  """Best-effort clean-up after a failure, which must not hide the failure itself."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  for path in files:
    try:
      path.unlink(missing_ok=True)
    except OSError as e:
      logging.warning("could not remove %s after a failed upload: %s", path, e)
  if folder is not None:
    try:
      tf.io.gfile.rmtree(str(folder))
    except tf.errors.OpError as e:
      logging.warning("could not remove %s after a failed upload: %s", folder, e.message)
