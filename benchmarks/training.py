r"""Training throughput (examples/s, seconds of audio/s) and peak memory, per config.

Usage:
  python benchmarks/training.py [--configs=tiny,gtzan --steps=10 --repetitions=2 \
      --num_songs=8 --song_secs=30 --profile --quick]

Each config trains in its own child process, so that process's peak resident
memory (`common.run_child`) is that config's alone. Inside it one `Trainer` builds its
train step once (`Trainer._build_train_step`, the step `Trainer.train` runs) and
feeds it, alternately, `--steps` steps from each of two inputs:
  memory  clips already in memory (synthesized), so the step alone is timed;
  folder  the real reader (`data.DatasetSource(...).dataset(config, "train")`) over
          synthesized 44.1 kHz stereo WAV songs: decode, resample, random crops,
          shuffle, in tf.data's background threads.
The gap between the two is what the input pipeline costs training. Rates are
steps x batch / median seconds of a block of steps; audio seconds per second
multiply that by the clip length. The device is named (a GPU when TensorFlow sees
one, else the CPU).
"""

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from absl import app
from absl import flags

import common

FLAGS = flags.FLAGS

common.define_flags(repetitions=2)
flags.DEFINE_list("configs", ["tiny", "gtzan"], "Configs to train.")
flags.DEFINE_integer("steps", 10, "Steps per timed block.")
flags.DEFINE_integer("num_songs", 8, "Synthesized songs in the folder input.")
flags.DEFINE_float("song_secs", 30.0, "Length of each synthesized song (seconds).")
flags.DEFINE_string("measure_config", None, "Internal: measure this config in this process "
                    "on the songs in --songs_dir and print the result as JSON.")
flags.DEFINE_string("songs_dir", None, "Internal: the folder of songs for --measure_config.")


def measure(config_name: str, songs_dir: str, steps: int, repetitions: int) -> dict:
  """Trains `config_name` in this process, alternating the two inputs; returns the rates."""
  common.quiet_tensorflow()
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from wave_music_vae import config as config_lib  # pylint: disable=g-import-not-at-top
  from wave_music_vae import data  # pylint: disable=g-import-not-at-top
  from wave_music_vae import training  # pylint: disable=g-import-not-at-top
  config = config_lib.load_config(config_name, {"eval_fraction": 0.0})
  training.seed_everything(config.seed)
  clips = np.stack([common.synth_music(config.clip_seconds, config.sample_rate_hz, seed)
                    for seed in range(2 * config.batch_size)])
  in_memory = tf.data.Dataset.from_tensor_slices(
      {"audio": clips, "label": tf.fill([len(clips)], "")}).repeat().batch(
          config.batch_size, drop_remainder=True)
  from_folder = data.DatasetSource(songs_dir, "folder").dataset(config, "train")
  inputs = {"memory": iter(in_memory), "folder": iter(from_folder)}
  with tempfile.TemporaryDirectory() as run_dir:
    trainer = training.Trainer(config, run_dir)
    train_step = trainer._build_train_step(config.batch_size)  # pylint: disable=protected-access

    def block(name):
      def run():
        for _ in range(steps):
          losses = train_step(next(inputs[name]))
        float(losses["loss"])   # Waits for the last step.
      return run

    times = common.alternate({name: block(name) for name in inputs}, repetitions)
    profile = None
    if FLAGS.profile:
      profile = common.op_profile(block("memory"))
  gpus = tf.config.list_physical_devices("GPU")
  device = (", ".join(tf.config.experimental.get_device_details(g).get("device_name", g.name)
                      for g in gpus) if gpus else "CPU")
  result = {"config": config.name, "batch_size": config.batch_size,
            "clip_seconds": config.clip_seconds, "device": device,
            "parameters": int(sum(np.prod(v.shape) for v in trainer.model.trainable_variables)),
            "profile": profile}
  for name, seconds in times.items():
    per_block = common.median(seconds)
    result[name] = {"seconds_per_step": per_block / steps,
                    "examples_per_second": steps * config.batch_size / per_block}
  return result


def main(argv):
  del argv
  configs, steps, repetitions = FLAGS.configs, FLAGS.steps, FLAGS.repetitions
  num_songs, song_secs = FLAGS.num_songs, FLAGS.song_secs
  if FLAGS.quick:
    configs, steps, repetitions, num_songs, song_secs = ["tiny"], 3, 1, 2, 4.0
  if FLAGS.measure_config:
    print(json.dumps(measure(FLAGS.measure_config, FLAGS.songs_dir, steps, repetitions)))
    return
  rows, profiles = [], []
  with tempfile.TemporaryDirectory() as songs_dir:
    for i in range(num_songs):
      common.write_song(Path(songs_dir) / f"song_{i:02d}.wav", song_secs, seed=i)
    for name in configs:
      child = common.run_child(
          [sys.executable, __file__, f"--measure_config={name}", f"--songs_dir={songs_dir}",
           f"--steps={steps}", f"--repetitions={repetitions}",
           f"--profile={FLAGS.profile}"] + (["--quick"] if FLAGS.quick else []))
      if child.returncode != 0:
        raise subprocess.CalledProcessError(child.returncode, name, child.stdout, child.stderr)
      result = json.loads(child.stdout.strip().splitlines()[-1])
      for feed in ("memory", "folder"):
        rate = result[feed]["examples_per_second"]
        rows.append([result["config"], result["device"], f"{result['parameters']:,}",
                     result["batch_size"], feed, f"{result[feed]['seconds_per_step']:.3f}",
                     f"{rate:.1f}", f"{rate * result['clip_seconds']:.1f}",
                     f"{common.megabytes(child.peak_rss_bytes):.0f}"])
      if result["profile"]:
        profiles.append((result["config"], result["profile"]))
  for name, profile in profiles:
    print(f"\n### {name}: {steps} training steps from memory (TensorFlow profiler)")
    print(profile)
  common.print_table(
      "Training throughput and peak memory",
      ["config", "device", "parameters", "batch", "input", "s/step", "examples/s",
       "audio s/s", "peak RSS MiB"], rows,
      [f"blocks of {steps} steps, median of {repetitions} alternated blocks per input after one "
       "warm-up block each; peak RSS is the whole child process (both inputs, TensorFlow "
       "included)",
       f"folder input: {num_songs} synthesized {song_secs:g} s songs, 44.1 kHz stereo WAV"])


if __name__ == "__main__":
  app.run(main)
