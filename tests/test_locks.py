"""Lock files: held while their owner runs, free to take or remove once it has ended."""

import fcntl

from wave_music_vae import locks


def test_a_held_lock_is_neither_taken_nor_removed(tmp_path):
  path = tmp_path / ".x.claim"
  held = locks.take(path, create=True)
  assert held is not None
  assert locks.take(path, create=True) is None and not locks.remove_abandoned(path)
  locks.release(path, held)
  assert not path.exists()
  path.touch()                      # left by a process that has ended: no one holds it
  assert locks.remove_abandoned(path) and not path.exists()
  assert locks.take(path) is None   # missing, and not to be made


def test_a_lock_file_removed_before_it_is_locked_is_not_taken(tmp_path, monkeypatch):
  """Between `take`'s open and its lock, another process may remove the file (its owner
  ending, or a remover): the lock of a file no longer there holds nothing."""
  path = tmp_path / ".x.claim"
  flock = fcntl.flock

  def remove_then_lock(fd, operation):
    path.unlink()
    path.touch()                    # and another process made a new one
    flock(fd, operation)
  monkeypatch.setattr(fcntl, "flock", remove_then_lock)
  assert locks.take(path, create=True) is None
  monkeypatch.setattr(fcntl, "flock", flock)
  held = locks.take(path)
  assert held is not None
  locks.release(path, held)
