"""wave_music_vae works without the optional apache_beam (the `[beam]` extra).

Each check runs in a fresh Python process in which importing apache_beam fails,
as in an environment where it was never installed.
"""

import json
import subprocess
import sys

# Makes apache_beam unimportable and records which wave_music_vae module tried.
_BLOCK_BEAM = r"""
import importlib.abc
import sys

class BlockBeam(importlib.abc.MetaPathFinder):
  importing = None
  attempts = []

  def find_spec(self, name, path, target=None):
    if name.split(".")[0] == "apache_beam":
      self.attempts.append([self.importing, name])
      raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    return None

BLOCK = BlockBeam()
sys.meta_path.insert(0, BLOCK)
"""

_IMPORT_EVERYTHING = _BLOCK_BEAM + r"""
import importlib
import json
import pkgutil

import wave_music_vae

BEAM_MODULE = "wave_music_vae.beam.prepare"
# The commands each define absl flags; cli/ is tested through its tools.
modules = sorted(m.name for m in pkgutil.walk_packages(wave_music_vae.__path__, "wave_music_vae.")
                 if not m.name.startswith("wave_music_vae.cli.") and m.name != BEAM_MODULE)
for name in modules:
  BLOCK.importing = name
  importlib.import_module(name)
library_attempts = list(BLOCK.attempts)
BLOCK.importing = BEAM_MODULE
try:
  importlib.import_module(BEAM_MODULE)
  beam_error = None
except ModuleNotFoundError as e:
  beam_error = e.name
from absl import flags
flag_modules = sorted(m for m in flags.FLAGS.flags_by_module_dict()
                      if "wave_music_vae" in m)
print(json.dumps({"modules": modules, "library_attempts": library_attempts,
                  "beam_error": beam_error, "flag_modules": flag_modules}))
"""


def _python(code: str, *args: str) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                        timeout=300, check=False)


def test_every_library_module_imports_without_apache_beam():
  result = _python(_IMPORT_EVERYTHING)
  assert result.returncode == 0, result.stderr[-3000:]
  report = json.loads(result.stdout.strip().splitlines()[-1])
  for expected in ("wave_music_vae.beam", "wave_music_vae.data", "wave_music_vae.model",
                   "wave_music_vae.training", "wave_music_vae.audio_io"):
    assert expected in report["modules"]
  assert report["library_attempts"] == []
  assert report["beam_error"] == "apache_beam"
  # Only the commands define flags: a library module that did would clash with them.
  assert "wave_music_vae.examples.render" in report["modules"]
  assert report["flag_modules"] == []


def test_prepare_tool_without_apache_beam_says_how_to_install_it(tmp_path):
  code = _BLOCK_BEAM + (
      "from wave_music_vae.cli.prepare_tfrecord import console_entry_point\n"
      "sys.argv = ['wave_music_vae_prepare_tfrecord'] + sys.argv[1:]\n"
      "console_entry_point()\n")
  song = tmp_path / "song.wav"
  song.write_bytes(b"")
  output = tmp_path / "out" / "clips"
  result = _python(code, f"--input_audio_filepatterns={song}", f"--output_tfrecord_path={output}")
  assert result.returncode == 1
  last_line = result.stderr.strip().splitlines()[-1]
  assert last_line == ("wave_music_vae_prepare_tfrecord: error: apache_beam is not installed; "
                       "install with pip install -e '.[beam]'")
  assert "Traceback" not in result.stderr
  assert not (tmp_path / "out").exists()
