"""Files a running process owns, told apart from those a killed process left behind.

A run that marks its work in progress with a file (generate's name claims, export's
staging folders) must remove the mark when it ends; a run killed with SIGKILL cannot,
and its mark would then stand forever. So each mark is a lock file held with an
exclusive `flock` for as long as its owner runs: the system releases the lock when the
owner ends, however it ends, so a lock file whose lock anyone can take belongs to no
running process and may be taken over or removed. Unlike a recorded pid, this cannot
mistake a reused pid for the owner, nor a live owner in another pid namespace (a
container) for a dead one. Local files only (POSIX; NFS emulates `flock` with its own
locks).

A lock is taken in two steps, open then `flock`; between them another process may
remove the file (the owner ending, or `remove_abandoned`). So after the lock is taken,
the path must still name the locked file; the owner removes its lock file before it
lets go of the lock (`release`), and a remover removes only what it holds the lock of.
"""

import fcntl
import os
import shutil
from pathlib import Path
from typing import Optional, Sequence


def take(path, create: bool = False) -> Optional[int]:
  """An open descriptor holding the exclusive lock of local file `path`, or None when a
  running process holds it, when `path` is missing (unless `create`, which makes it),
  or when it was removed or replaced meanwhile. The lock lasts until `release`, or
  until this process ends."""
  try:
    fd = os.open(path, os.O_RDWR | (os.O_CREAT if create else 0), 0o644)
  except (FileNotFoundError, PermissionError):
    if create and not os.path.lexists(path):
      raise  # Its folder is missing or cannot be written in.
    return None  # Gone, or another user's: not ours to take.
  try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    if os.path.samestat(os.fstat(fd), os.stat(path)):
      return fd
  except (BlockingIOError, FileNotFoundError):
    pass
  os.close(fd)
  return None


def release(path, fd: int) -> None:
  """Removes lock file `path`, then lets go of its lock `fd` (from `take`): in this order,
  so that no other process can take the lock of a file still there."""
  try:
    Path(path).unlink(missing_ok=True)
  finally:
    os.close(fd)


def remove_abandoned(path, guarded: Sequence[Path] = ()) -> bool:
  """Removes lock file `path` when no running process holds its lock, and first the files
  and folders `guarded` that it stands for; returns whether it did."""
  fd = take(path)
  if fd is None:
    return False
  try:
    for leftover in guarded:
      if leftover.is_dir():
        shutil.rmtree(leftover, ignore_errors=True)
      else:
        leftover.unlink(missing_ok=True)
  finally:
    release(path, fd)
  return True
