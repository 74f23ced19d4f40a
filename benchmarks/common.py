"""What the benchmark scripts share: test audio, alternating timers, peak memory, tables, profiles.

Every benchmark compares a pair (ours against what a user would use instead, or
two ways of running ours) in one run: `alternate` calls the contenders in turn,
A B then B A, for several repetitions, after an untimed warm-up call of each, so
both see the same machine load; tables give the median and the ratio. Absolute
figures move with the machine's load, which `machine_summary` records (the
`uptime` line) next to each table; ratios of a pair measured alternately hold up
far better.

Peak resident memory is measured in a child process: `run_child` samples the
kernel's high-water mark of the child's resident set (`VmHWM` in /proc/PID/status,
Linux) every 50 ms until it exits. Not `ru_maxrss` from `os.wait4`: on exec, Linux
carries the parent's high-water mark into the child's `ru_maxrss`, so a benchmark
that had synthesized ten minutes of audio before starting the child read its own
peak (1858 MiB) for every child, even one that peaked at 721 MiB.

Profiles: `python_profile` (cProfile: where Python time goes, by function) and
`op_profile` (`tf.profiler.experimental`: where TensorFlow's executor threads
spend their time, by op type, read from the trace's XPlane without TensorBoard).

Scripts import this module as `common` (run them as `python benchmarks/NAME.py`).
"""

import collections
import cProfile
import dataclasses
import glob
import io
import logging
import os
import pstats
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Sequence

from absl import flags
from absl import logging as absl_logging
import numpy as np
import soundfile

# libsndfile subtypes used when writing synthesized songs, by extension.
SUBTYPES = {".wav": "PCM_16", ".flac": "PCM_16", ".ogg": "VORBIS", ".mp3": "MPEG_LAYER_III"}
SOURCE_RATE_HZ = 44100  # Synthesized files are CD-rate stereo, as most users' music.


def define_flags(repetitions: int, profile: bool = True) -> None:
  """Flags the scripts share: --quick, --repetitions and (where it applies) --profile."""
  flags.DEFINE_bool("quick", False, "Small sizes and one repetition: a smoke run of the script.")
  flags.DEFINE_integer("repetitions", repetitions, "Timed calls of each contender (after one "
                       "untimed warm-up call); the tables give their median.")
  if profile:
    flags.DEFINE_bool("profile", False, "Also print where the time goes (cProfile by function, "
                      "TensorFlow's profiler by op type).")


def quiet_tensorflow() -> None:
  """Keeps TensorFlow's chatter out of the tables (call before importing it)."""
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  logging.getLogger("tensorflow").setLevel(logging.ERROR)
  absl_logging.set_verbosity(absl_logging.WARNING)


def machine_summary() -> str:
  """CPU cores, the `uptime` line (load averages) and the TensorFlow devices, in one line."""
  uptime = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
  line = f"{os.cpu_count()} CPU cores; uptime: {uptime or 'unknown'}"
  if "tensorflow" in sys.modules:
    tf = sys.modules["tensorflow"]
    gpus = tf.config.list_physical_devices("GPU")
    line += f"; TensorFlow {tf.__version__} on " + (
        ", ".join(tf.config.experimental.get_device_details(g).get("device_name", g.name)
                  for g in gpus) if gpus else "CPU only")
  return line


# -- test audio ----------------------------------------------------------------------

def synth_music(seconds: float, sample_rate_hz: int, seed: int = 0) -> np.ndarray:
  """Seconds of synthetic 'music': float32 [samples] in [-0.9, 0.9].

  Three-note chords of harmonic tones (five partials, decaying), changing every
  half second, over a bass note and noise hi-hats on the eighth notes: broadband,
  with onsets, so decoders, resamplers and Griffin-Lim all get real work.
  """
  rng = np.random.default_rng(seed)
  n = int(round(seconds * sample_rate_hz))
  t = np.arange(n) / sample_rate_hz
  beat = sample_rate_hz // 2
  num_beats = n // beat + 1
  since_beat = (np.arange(n) % beat) / sample_rate_hz
  roots = 110.0 * 2.0 ** (rng.integers(0, 12, size=num_beats) / 12.0)
  y = np.zeros(n)
  for interval in (0, 4, 7):
    f0 = np.repeat(roots * 2.0 ** ((12 + interval) / 12.0), beat)[:n]
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate_hz
    y += sum(np.sin(k * phase) / k for k in range(1, 6)) * np.exp(-2.5 * since_beat)
  bass = np.sin(2 * np.pi * np.cumsum(np.repeat(roots / 2, beat)[:n]) / sample_rate_hz)
  y += 1.5 * bass * np.exp(-1.5 * since_beat)
  eighth = beat // 2
  hats = rng.standard_normal(n) * np.exp(-60.0 * (np.arange(n) % eighth) / sample_rate_hz)
  y += 0.4 * np.diff(hats, prepend=0.0)
  y *= 1.0 + 0.1 * np.sin(2 * np.pi * 0.1 * t)
  return (0.9 * y / np.max(np.abs(y))).astype(np.float32)


def write_song(path, seconds: float, seed: int = 0, sample_rate_hz: int = SOURCE_RATE_HZ,
               channels: int = 2) -> Path:
  """Writes `synth_music` as a file whose format follows the extension (see SUBTYPES)."""
  path = Path(path)
  mono = synth_music(seconds, sample_rate_hz, seed)
  samples = np.stack([mono * (1.0 - 0.2 * c) for c in range(channels)], axis=1)
  soundfile.write(str(path), samples, sample_rate_hz, subtype=SUBTYPES[path.suffix.lower()])
  return path


def folder_songs(folder, max_files: int) -> List[Path]:
  """Up to `max_files` audio files below `folder`, sorted, for runs on the user's own music."""
  from wave_music_vae import audio_io  # pylint: disable=g-import-not-at-top
  folder = Path(folder).expanduser()   # `--folder=~/music`: the shell leaves that `~` alone.
  files = sorted(p for p in folder.rglob("*")
                 if p.is_file() and p.suffix.lower() in audio_io.AUDIO_EXTENSIONS)
  if not files:
    raise SystemExit(f"{folder}: no audio files")
  return files[:max_files]


# -- timing --------------------------------------------------------------------------

def alternate(contenders: Mapping[str, Callable[[], object]], repetitions: int,
              warmup: Optional[Sequence[str]] = None) -> Dict[str, List[float]]:
  """Wall seconds of each contender's calls, taken in turn.

  The contenders named in `warmup` (default: all) are first called once untimed
  (tracing, caches, JIT). Then repetition r calls them in order when r is even and
  in reverse order when r is odd (A B, B A, ...), so neither always runs first.
  Returns {name: [seconds of each timed call]}.
  """
  names = list(contenders)
  for name in names if warmup is None else warmup:
    contenders[name]()
  times = {name: [] for name in names}
  for repetition in range(repetitions):
    for name in names if repetition % 2 == 0 else names[::-1]:
      started = time.perf_counter()
      contenders[name]()
      times[name].append(time.perf_counter() - started)
  return times


def median(values: Sequence[float]) -> float:
  return float(statistics.median(values))


def spread(values: Sequence[float]) -> str:
  """'min-max' of the timed calls, to show how noisy a median is."""
  return f"{min(values):.3g}-{max(values):.3g}"


# -- memory --------------------------------------------------------------------------

@dataclasses.dataclass
class ChildResult:
  """What a child process did: exit status, output, wall seconds, peak resident bytes."""

  returncode: int
  stdout: str
  stderr: str
  wall_seconds: float
  peak_rss_bytes: int


def _high_water_bytes(pid: int) -> int:
  """VmHWM of a live process (its peak resident set so far), or 0 once it is gone."""
  try:
    status = Path(f"/proc/{pid}/status").read_text()
  except OSError:
    return 0
  found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
  return int(found.group(1)) * 1024 if found else 0


def run_child(argv: Sequence[str], env: Optional[Mapping[str, str]] = None,
              cwd: Optional[str] = None, poll_seconds: float = 0.05) -> ChildResult:
  """Runs `argv` to completion, sampling its peak resident memory (VmHWM) as it runs."""
  with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
    started = time.perf_counter()
    process = subprocess.Popen(list(argv), stdout=out, stderr=err, cwd=cwd,
                               env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})})
    peak = 0
    while True:
      peak = max(peak, _high_water_bytes(process.pid))
      pid, status, _ = os.wait4(process.pid, os.WNOHANG)
      if pid:
        break
      time.sleep(poll_seconds)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    out.seek(0)
    err.seek(0)
    return ChildResult(process.returncode, out.read(), err.read(), wall, peak)


def megabytes(num_bytes: float) -> float:
  return num_bytes / 2 ** 20


# -- tables --------------------------------------------------------------------------

def format_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
  """A plain-text table: right-aligned columns, a dashed rule under the header."""
  cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
  widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
  lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells]
  lines.insert(1, "  ".join("-" * w for w in widths))
  return "\n".join(lines)


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]],
                notes: Sequence[str] = ()) -> None:
  """Prints `title`, the machine line, the table, a blank line, its notes, a blank line."""
  print(f"\n## {title}")
  print(f"({machine_summary()})")
  print(format_table(header, rows))
  print()
  for note in notes:
    print(f"  {note}")
  print(flush=True)


# -- profiles ------------------------------------------------------------------------

def python_profile(function: Callable[[], object], top: int = 12) -> str:
  """cProfile of one call: the `top` functions by own time (tottime), as pstats prints them."""
  profiler = cProfile.Profile()
  profiler.runcall(function)
  text = io.StringIO()
  pstats.Stats(profiler, stream=text).strip_dirs().sort_stats("tottime").print_stats(top)
  lines = text.getvalue().splitlines()
  start = next(i for i, line in enumerate(lines) if "function calls" in line)
  return "\n".join(line for line in lines[start:] if line.strip())


def op_profile(function: Callable[[], object], top: int = 12) -> str:
  """TensorFlow's profiler over one call: executor time by op type, largest first.

  Sums the durations of every op event on the host's `tf_Compute` threads of the
  trace (the executor's bookkeeping events left out). Under load these durations
  include time the thread was descheduled, so read the shares, not the totals.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tensorflow.tsl.profiler.protobuf import xplane_pb2  # pylint: disable=g-import-not-at-top
  with tempfile.TemporaryDirectory() as logdir:
    tf.profiler.experimental.start(logdir)
    started = time.perf_counter()
    try:
      function()
    finally:
      wall = time.perf_counter() - started
      tf.profiler.experimental.stop()
    space = xplane_pb2.XSpace()
    for path in glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True):
      space.MergeFromString(Path(path).read_bytes())
  by_type = collections.Counter()
  for plane in space.planes:
    for line in plane.lines:
      if not line.name.startswith("tf_Compute"):
        continue
      for event in line.events:
        name = plane.event_metadata[event.metadata_id].name
        if ":" in name.replace("::", ""):   # 'scope/op_name:OpType', not 'ExecutorState::Process'.
          by_type[name.rsplit(":", 1)[1]] += event.duration_ps / 1e12
  total = sum(by_type.values()) or 1.0
  rows = [(op_type, f"{seconds:.3f}", f"{100 * seconds / total:.1f}%")
          for op_type, seconds in by_type.most_common(top)]
  return (f"wall {wall:.2f} s; op time summed over executor threads {total:.2f} s\n"
          + format_table(["op type", "seconds", "share"], rows))
