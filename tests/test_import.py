"""How wave_music_vae imports: one way (no cycles, nothing imports the CLI), and without the
optional apache_beam (the `[beam]` extra).

The apache_beam checks run in a fresh Python process in which importing apache_beam fails,
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


def _package_imports() -> dict:
  """{module: the wave_music_vae modules it imports, at top level or inside functions}."""
  import ast  # pylint: disable=g-import-not-at-top
  from pathlib import Path  # pylint: disable=g-import-not-at-top
  import wave_music_vae  # pylint: disable=g-import-not-at-top
  root = Path(wave_music_vae.__file__).parent
  modules = {}
  for path in root.rglob("*.py"):
    name = ".".join(("wave_music_vae",) + path.relative_to(root).with_suffix("").parts)
    name = name.removesuffix(".__init__")
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
      if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("wave_music_vae"):
        imported |= ({f"{node.module}.{a.name}" for a in node.names}
                     if node.module == "wave_music_vae" else {node.module})
      elif isinstance(node, ast.Import):
        imported |= {a.name for a in node.names if a.name.startswith("wave_music_vae")}
    modules[name] = imported
  return {name: {m for m in imported if m in modules} for name, imported in modules.items()}


def test_imports_flow_one_way():
  graph = _package_imports()
  for name, imported in graph.items():
    if not name.startswith("wave_music_vae.cli"):
      assert not {m for m in imported if m.startswith("wave_music_vae.cli")}, name
  # Depth-first search for a module that reaches itself.
  for start in graph:
    stack = [(start, (start,))]
    while stack:
      name, path = stack.pop()
      for imported in graph[name]:
        assert imported != start, f"import cycle: {' -> '.join(path + (start,))}"
        if imported not in path:
          stack.append((imported, path + (imported,)))


def test_loading_a_model_does_not_load_the_training_loop():
  result = _python("import sys; from wave_music_vae import inference, generation; "
                   "print('wave_music_vae.training' in sys.modules)")
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout.split()[-1] == "False"
