"""Output locations are checked before any work, and the check itself makes nothing."""

from pathlib import Path

import pytest

from wave_music_vae import output_locations

# Nobody, not even root, may create files in /sys: a real unwritable folder.
UNWRITABLE = Path("/sys")
needs_unwritable = pytest.mark.skipif(not UNWRITABLE.is_dir(), reason="needs Linux's /sys")


def _everything_below(folder):
  return sorted(p.relative_to(folder).as_posix() for p in Path(folder).rglob("*"))


def test_writable_folders_and_files_pass_and_nothing_is_made(tmp_path):
  (tmp_path / "exists").mkdir()
  output_locations.check_folder(tmp_path / "exists")
  output_locations.check_folder(tmp_path / "new" / "deeper")
  output_locations.check_file(tmp_path / "new" / "eval.json")
  output_locations.check_file(tmp_path / "exists" / "eval.json")
  output_locations.check_folder("gs://bucket/never/checked")
  assert _everything_below(tmp_path) == ["exists"]  # no folder made, no probe file left


def test_a_file_where_a_folder_should_be(tmp_path):
  notes = tmp_path / "notes.txt"
  notes.write_text("mine")
  with pytest.raises(output_locations.OutputPathError) as error:
    output_locations.check_folder(notes)
  assert str(error.value) == f"{notes}: not a folder"
  with pytest.raises(output_locations.OutputPathError) as error:
    output_locations.check_folder(notes / "run" / "train")
  assert str(error.value) == f"{notes / 'run' / 'train'}: cannot be made: {notes} is not a folder"
  with pytest.raises(output_locations.OutputPathError) as error:
    output_locations.check_file(notes / "eval.json")
  assert str(error.value) == f"{notes / 'eval.json'}: cannot be made: {notes} is not a folder"
  assert notes.read_text() == "mine"


def test_a_folder_where_a_file_should_be(tmp_path):
  with pytest.raises(output_locations.OutputPathError) as error:
    output_locations.check_file(tmp_path)
  assert str(error.value) == f"{tmp_path}: is a folder, not a file name"


@needs_unwritable
def test_a_folder_that_refuses_new_files_even_to_root():
  with pytest.raises(output_locations.OutputPathError) as error:
    output_locations.check_folder(UNWRITABLE / "wave_music_vae_run")
  assert str(error.value) == (f"{UNWRITABLE / 'wave_music_vae_run'}: cannot be written in "
                              f"{UNWRITABLE} (Permission denied)")
  with pytest.raises(output_locations.OutputPathError, match=r"^/sys: cannot be written \("):
    output_locations.check_folder(UNWRITABLE)
  with pytest.raises(output_locations.OutputPathError,
                     match=r"^/sys/eval.json: cannot be written in /sys \("):
    output_locations.check_file(UNWRITABLE / "eval.json")
