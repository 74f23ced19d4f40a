r"""Training throughput (examples per second) on 1 vs 2 logical CPU devices.

Usage:
  python benchmarks/distributed_training.py [--config=tiny --batch_size=8 --steps=300 \
      --repetitions=3 --devices=1,2]

Each device count runs in a fresh process (logical devices must be configured
before TensorFlow starts): the default strategy on one device, MirroredStrategy
over N logical CPU devices otherwise, training `--config` on synthetic clips with
the same global batch. `Trainer.train` runs until the step counter reaches its
argument, and each call traces its step function again and writes a checkpoint at
its end; so, after one warm-up call of `--warmup_steps` (the first trace, the
optimizer's variables), each repetition times a call of `--steps` steps and one of
2 x `--steps`: their difference is `--steps` steps alone, the trace and the
checkpoint cancelling. The rate is the median over repetitions of
steps x batch / (the longer call's seconds - the shorter's).
Logical CPU devices share the machine's cores, so this measures what distribution
costs on one machine, not a speed-up; real speed-ups need several GPUs or workers.
"""

import json
import os
import subprocess
import sys
import tempfile

from absl import app
from absl import flags

FLAGS = flags.FLAGS

flags.DEFINE_string("config", "tiny", "Config to train.")
flags.DEFINE_integer("batch_size", 8, "Global batch size (clips per step, over all devices).")
flags.DEFINE_integer("steps", 300, "Steps measured in each repetition.")
flags.DEFINE_integer("repetitions", 3, "Pairs of calls timed; the median rate is reported.")
flags.DEFINE_integer("warmup_steps", 3, "Steps of the first call (tracing and warm-up).")
flags.DEFINE_list("devices", ["1", "2"], "Logical CPU device counts to measure.")
flags.DEFINE_integer("measure_devices", 0, "Internal: measure this device count in this "
                     "process and print the result as JSON.")


def measure(num_devices: int) -> dict:
  """Trains in this process on `num_devices` logical CPU devices; returns the rate."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if num_devices > 1:
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * num_devices)
  from wave_music_vae import config as config_lib  # pylint: disable=g-import-not-at-top
  from wave_music_vae import training  # pylint: disable=g-import-not-at-top
  config = config_lib.load_config(FLAGS.config, {"batch_size": FLAGS.batch_size,
                                                 "checkpoint_every_steps": 10 ** 9})
  training.seed_everything(config.seed)
  strategy = (tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(num_devices)])
              if num_devices > 1 else tf.distribute.get_strategy())
  rng = np.random.default_rng(0)
  clips = (0.1 * rng.standard_normal([config.batch_size * 4, config.clip_samples])).astype(
      np.float32)
  dataset = tf.data.Dataset.from_tensor_slices({"audio": clips}).repeat().batch(
      config.batch_size)
  differences = []
  with tempfile.TemporaryDirectory() as run_dir:
    trainer = training.Trainer(config, run_dir, strategy)

    def call(steps):   # `train` runs until the counter reaches its argument.
      return trainer.train(dataset, int(trainer.step.numpy()) + steps, progress=False).seconds

    call(FLAGS.warmup_steps)
    for _ in range(FLAGS.repetitions):
      shorter = call(FLAGS.steps)
      differences.append(call(2 * FLAGS.steps) - shorter)
  seconds = float(np.median(differences))
  return {"devices": strategy.num_replicas_in_sync,
          "strategy": "Mirrored" if num_devices > 1 else "default",
          "steps": FLAGS.steps, "seconds": seconds,
          "spread": [round(d, 2) for d in differences],
          "examples_per_second": FLAGS.steps * config.batch_size / seconds}


def main(argv):
  del argv
  if FLAGS.measure_devices:
    print(json.dumps(measure(FLAGS.measure_devices)))
    return
  rows = []
  for devices in FLAGS.devices:
    result = subprocess.run(
        [sys.executable, __file__, f"--measure_devices={devices}", f"--config={FLAGS.config}",
         f"--batch_size={FLAGS.batch_size}", f"--steps={FLAGS.steps}",
         f"--repetitions={FLAGS.repetitions}", f"--warmup_steps={FLAGS.warmup_steps}"],
        capture_output=True, text=True, check=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
  print(f"\nconfig {FLAGS.config}, global batch {FLAGS.batch_size}, {os.cpu_count()} CPU cores, "
        f"load average {os.getloadavg()[0]:.1f} at the end")
  print(f"{'devices':>8}  {'strategy':<10}{'steps':>6}{'seconds':>9}{'examples/s':>12}  "
        f"seconds of each repetition")
  for row in rows:
    print(f"{row['devices']:>8}  {row['strategy']:<10}{row['steps']:>6}{row['seconds']:>9.2f}"
          f"{row['examples_per_second']:>12.1f}  {', '.join(map(str, row['spread']))}")


if __name__ == "__main__":
  app.run(main)
