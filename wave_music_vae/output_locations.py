"""Where outputs go, checked before the work: a long run never ends in a refused write.

Every command that writes (a run directory, an export, an evaluation JSON, generated
songs, attribute vectors, TFRecord shards) checks its output location here first,
so that a folder that cannot be made or written in fails in one line,
`<path>: <cause>`, before minutes of training, evaluation or generation.

Writability is tested by creating and removing a probe file, not with
`os.access`: `os.access` says yes to root on a read-only mount, and to anyone on
a folder whose file system refuses new files (`/sys`, a full quota).
Remote locations (`gs://`, ...) are left to their file system.
"""

import tempfile
from pathlib import Path

from wave_music_vae.paths import is_remote


class OutputPathError(Exception):
  """An output location that cannot be made or written in; names it and why."""


def _check(folder: Path, named: Path) -> None:
  """Raises OutputPathError, naming `named`, unless files can be written in `folder`."""
  existing = folder
  while not existing.exists() and existing != existing.parent:
    existing = existing.parent
  if not existing.is_dir():
    cause = "not a folder" if existing == named else f"cannot be made: {existing} is not a folder"
    raise OutputPathError(f"{named}: {cause}")
  try:
    with tempfile.TemporaryFile(dir=existing, prefix=".wave_music_vae_probe"):
      pass
  except OSError as e:
    where = "" if existing == named else f" in {existing}"
    raise OutputPathError(f"{named}: cannot be written{where} ({e.strerror or e})") from None


def check_folder(folder) -> None:
  """Raises OutputPathError unless `folder` is, or can be made as, a folder we may write in.

  Nothing is made: only a probe file is created and removed in the folder, or in
  its nearest existing parent when the folder does not exist yet.
  """
  if not is_remote(folder):
    folder = Path(folder).expanduser()
    _check(folder, folder)


def check_file(path) -> None:
  """Raises OutputPathError unless a file can be written at `path` (its folder made if missing)."""
  if not is_remote(path):
    path = Path(path).expanduser()
    if path.is_dir():
      raise OutputPathError(f"{path}: is a folder, not a file name")
    _check(path.parent, path)

