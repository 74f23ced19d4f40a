"""Each benchmark script runs in a fresh process with --quick and prints its table.

Slow (TensorFlow starts in every script, several of them train or export a model):
run with `pytest -m slow tests/test_benchmarks.py`.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"

# Script -> (title of each table it prints, the header's first column).
TABLES = {
    "input_pipeline.py": [("Input pipeline", "format")],
    "griffin_lim.py": [("Mel inversion", "stage")],
    "generation.py": [("Generation end to end", "task")],
    "training.py": [("Training throughput", "config")],
    "scaling.py": [("Scaling with song length", "operation"),
                   ("Scaling with batch size", "operation")],
    "memory.py": [("Peak memory", "mode")],
}


def table_rows(stdout: str, title: str):
  """The rows under the dashed rule of the table headed '## <title>...', as lists of cells."""
  lines = stdout.splitlines()
  start = next(i for i, line in enumerate(lines) if line.startswith(f"## {title}"))
  rule = next(i for i in range(start, len(lines)) if re.fullmatch(r"[- ]+", lines[i]))
  header = lines[rule - 1].split()
  rows = []
  for line in lines[rule + 1:]:
    if not line.strip():   # A blank line ends the table; its notes follow.
      break
    rows.append(line.split())
  return header, rows


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(TABLES))
def test_quick_run_prints_its_table(script):
  result = subprocess.run([sys.executable, str(BENCHMARKS / script), "--quick"],
                          capture_output=True, text=True, timeout=1200, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  for title, first_column in TABLES[script]:
    header, rows = table_rows(result.stdout, title)
    assert header[0] == first_column
    assert rows, f"{script}: the table {title!r} has no rows:\n{result.stdout}"
    for row in rows:
      numbers = [cell for cell in row if re.fullmatch(r"[-+]?\d[\d,]*\.?\d*(e[-+]?\d+)?[x%]?",
                                                      cell)]
      assert numbers, f"{script}: a row without a measured number: {row}"
  assert "uptime:" in result.stdout   # The machine's load is stated beside each table.


@pytest.mark.slow
def test_reader_overhead_times_the_three_readers_on_every_format():
  result = subprocess.run([sys.executable, str(BENCHMARKS / "input_pipeline.py"), "--quick",
                           "--reader_overhead", "--formats=wav,ogg"],
                          capture_output=True, text=True, timeout=1200, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  header, rows = table_rows(result.stdout, "Decoding alone")
  assert header[:2] == ["format", "decoded"]
  readers = {(row[0], " ".join(row[1:-3])) for row in rows}
  assert readers == {(fmt, reader) for fmt in ("wav", "ogg") for reader in
                     ("tf.data (ours)", "tf.data, autotuner off", "Python threads")}
  for row in rows:
    wall, cpu, audio_per_second = map(float, row[-3:])
    assert wall > 0 and cpu > 0 and audio_per_second > 0, row
