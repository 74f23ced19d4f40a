r"""Peak memory of `wave_music_vae_generate` on long songs (target: under 2 GB for 10 minutes).

Usage:
  python benchmarks/memory.py [--song_secs=60,600 --modes=reconstruct,interpolate \
      --config=soundtracks --griffin_lim_iters=8 --num_outputs=5 --target_gb=2 \
      --repetitions=2 --quick]

Each row is one run of the real command in a child process, whose peak resident
memory is its kernel high-water mark (`common.run_child`): TensorFlow, the model,
the decoded input song(s), the streamed windows and the output songs, all included.
The model is a random-weight checkpoint of `--config` saved as a run directory
(`--run_dir`); the songs are synthesized 44.1 kHz stereo WAVs. Rows:
  baseline      `--list_attributes`: TensorFlow and the model loaded, no audio;
  reconstruct   one song in, one song out;
  interpolate   two songs of that length in, `--num_outputs` songs out (the most a
                command holds: 2 inputs and num_outputs outputs of the full length).
The growth between two lengths, per minute of audio, shows what stays in memory
per minute (the songs themselves) against what is streamed (per-window work).
Griffin-Lim's iteration count changes the time, not the memory (its loop state has
a fixed size): the 60 s rows are also run at 32 iterations to show it.
"""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from absl import app
from absl import flags

import common

FLAGS = flags.FLAGS

common.define_flags(repetitions=2, profile=False)
flags.DEFINE_list("song_secs", ["60", "600"], "Song lengths (seconds).")
flags.DEFINE_list("modes", ["reconstruct", "interpolate"], "Generate modes to run.")
flags.DEFINE_string("config", "soundtracks", "Config of the model (random weights).")
flags.DEFINE_integer("griffin_lim_iters", 8, "Griffin-Lim iterations (memory does not depend "
                     "on them; time does).")
flags.DEFINE_integer("num_outputs", 5, "Interpolation outputs.")
flags.DEFINE_float("target_gb", 2.0, "The limit each run must stay under (GB, 10^9 bytes).")


def random_run_dir(config_name: str, run_dir: Path) -> None:
  """A run directory holding `config_name` with random weights at step 0 (in a child)."""
  code = ("import sys; from wave_music_vae import config, training; "
          "c = config.load_config(sys.argv[1]); training.seed_everything(c.seed); "
          "training.prepare_run_dir(sys.argv[2], c); training.Trainer(c, sys.argv[2]).save()")
  subprocess.run([sys.executable, "-c", code, config_name, str(run_dir)], check=True,
                 capture_output=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})


def generate(run_dir: Path, output_dir: Path, args) -> common.ChildResult:
  """Runs wave_music_vae_generate with `args`; raises with its stderr on failure."""
  argv = [sys.executable, "-m", "wave_music_vae.cli.generate", f"--run_dir={run_dir}",
          f"--output_dir={output_dir}"] + list(args)
  result = common.run_child(argv)
  if result.returncode != 0:
    raise RuntimeError(f"{' '.join(argv)} failed: {result.stderr.strip()[-600:]}")
  return result


def main(argv):
  del argv
  config_name, lengths = FLAGS.config, [float(s) for s in FLAGS.song_secs]
  iterations, num_outputs = FLAGS.griffin_lim_iters, FLAGS.num_outputs
  repetitions = FLAGS.repetitions
  if FLAGS.quick:
    config_name, lengths, iterations, num_outputs, repetitions = "tiny", [5.0, 20.0], 4, 3, 1
  limit = FLAGS.target_gb * 1e9
  rows = []
  with tempfile.TemporaryDirectory() as tmp:
    tmp = Path(tmp)
    random_run_dir(config_name, tmp / "run")
    runs = [("baseline", 0.0, iterations, ["--list_attributes"])]
    for seconds in lengths:
      songs = [common.write_song(tmp / f"song_{seconds:g}_{i}.wav", seconds, seed=i)
               for i in (1, 2)]
      for mode in FLAGS.modes:
        inputs = [f"--input_audio_1={songs[0]}"]
        if mode == "interpolate":
          inputs += [f"--input_audio_2={songs[1]}", f"--num_outputs={num_outputs}"]
        check_iterations = seconds == min(lengths) and iterations != 32 and not FLAGS.quick
        counts = [iterations] + ([32] if check_iterations else [])
        for count in counts:
          runs.append((mode, seconds, count, [f"--mode={mode}", f"--griffin_lim_iters={count}"]
                       + inputs))
    peaks = {number: [] for number in range(len(runs))}
    walls = {number: [] for number in range(len(runs))}
    for _ in range(repetitions):   # Every run once, then again: each sees the same load.
      for number, (_, _, _, args) in enumerate(runs):
        result = generate(tmp / "run", tmp / f"out_{number}_{len(peaks[number])}", args)
        peaks[number].append(result.peak_rss_bytes)
        walls[number].append(result.wall_seconds)
    by_mode = {}
    for number, (mode, seconds, count, _) in enumerate(runs):
      peak = max(peaks[number])
      if count == iterations:
        by_mode.setdefault(mode, []).append((seconds, common.median(peaks[number])))
      rows.append([mode, f"{seconds:g}" if seconds else "-", count if seconds else "-",
                   num_outputs if mode == "interpolate" else (1 if seconds else "-"),
                   f"{common.median(walls[number]):.1f}",
                   f"{common.megabytes(common.median(peaks[number])):.0f}",
                   f"{common.megabytes(peak):.0f}", "yes" if peak < limit else "NO"])
  notes = [f"config {config_name} (random weights), synthesized 44.1 kHz stereo WAV input(s); "
           f"peak RSS of the whole `wave_music_vae_generate` process (MiB), median and maximum "
           f"of {repetitions} run(s) each; target: the maximum < {FLAGS.target_gb:g} GB"]
  for mode, measured in by_mode.items():
    if len(measured) >= 2:
      (short, low), (long, high) = measured[0], measured[-1]
      notes.append(f"{mode}: {common.megabytes(high - low) / ((long - short) / 60):.1f} MiB more "
                   f"per minute of song between {short:g} s and {long:g} s (medians)")
  common.print_table("Peak memory of wave_music_vae_generate on long songs",
                     ["mode", "song s", "GL iters", "outputs", "wall s", "peak MiB",
                      "max peak MiB", f"< {FLAGS.target_gb:g} GB"], rows, notes)


if __name__ == "__main__":
  app.run(main)
