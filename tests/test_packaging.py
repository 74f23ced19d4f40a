"""setup.cfg: a wheel (`pip install .`, not only `pip install -e .`) carries the named configs
and the shipped checkpoint, where `config.configs_dir` and `checkpoints.checkpoints_root`
find them outside the repository, and the package's data files (GTZAN's official split)."""

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent


def _run(*args, cwd=None):
  result = subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=cwd,
                          timeout=600, check=False)
  assert result.returncode == 0, result.stderr[-2000:]
  return result.stdout


def test_an_installed_wheel_finds_its_configs_and_the_shipped_checkpoint(tmp_path):
  source = tmp_path / "source"   # A copy: the build leaves build/ and egg-info behind.
  shutil.copytree(REPOSITORY, source, ignore=shutil.ignore_patterns(
      ".git", ".venv", "runs", "build", "*.egg-info", "__pycache__", ".pytest_cache"))
  _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
       "-w", tmp_path / "wheel", source)
  wheel, = (tmp_path / "wheel").glob("wave_music_vae-*.whl")
  venv = tmp_path / "venv"
  _run(sys.executable, "-m", "venv", venv)
  python = venv / "bin" / "python"
  # The dependencies come from this interpreter's environment, which a .pth file adds to
  # the new one's path (its .pth files, such as this checkout's editable install, are not read).
  site_packages = Path(_run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))")
                       .strip())
  (site_packages / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
  _run(python, "-m", "pip", "install", "-q", "--no-deps", wheel)
  found = _run(python, "-c", "import wave_music_vae; from wave_music_vae import checkpoints, "
               "config, data; print(wave_music_vae.__file__); print(config.configs_dir()); "
               "print(' '.join(config.available_configs())); "
               "print(checkpoints.default_checkpoint()); print(data.GTZAN_FAULT_FILTERED)",
               cwd=tmp_path).splitlines()[-5:]
  assert found[0].startswith(str(site_packages))
  # The data files the package reads: GTZAN's official split.
  assert found[4].startswith(str(site_packages)) and Path(found[4]).read_bytes() == (
      REPOSITORY / "wave_music_vae" / "splits" / "gtzan_fault_filtered.json").read_bytes()
  assert found[1] == str(venv / "share" / "wave_music_vae" / "configs")
  assert found[2].split() == sorted(p.stem for p in (REPOSITORY / "configs").glob("*.json"))
  installed = venv / "share" / "wave_music_vae" / "checkpoints"
  assert Path(found[3]) == installed / "soundtracks"
  # Every shipped checkpoint folder (setup.cfg names each one), with all its files.
  for folder in (REPOSITORY / "checkpoints").glob("*/model.weights.h5"):
    assert sorted(p.name for p in (installed / folder.parent.name).iterdir()) == sorted(
        p.name for p in folder.parent.iterdir()), folder.parent.name
