r"""Throughput of the Beam preparation pipeline: seconds of audio per wall second.

Usage:
  python benchmarks/beam_throughput.py [--num_songs=24 --song_secs=60 --workers=1,2 \
      --running_modes=multi_processing]

Synthesizes songs (44.1 kHz stereo WAV, so each is mixed down and resampled to
22050 Hz) in a temporary folder, runs `wave_music_vae.beam.prepare` once per
DirectRunner running mode and worker count (1 s clips, no overlap), and prints a
table. Wall time covers the whole run, worker start-up included. Only the
`multi_processing` mode runs Python code in parallel; `in_memory` workers are
threads sharing one interpreter lock.
"""

import logging
import os
import tempfile
import time
from pathlib import Path

from absl import app
from absl import flags
import numpy as np
import soundfile

from wave_music_vae.beam import prepare

FLAGS = flags.FLAGS

flags.DEFINE_integer("num_songs", 24, "Songs to synthesize.")
flags.DEFINE_float("song_secs", 60.0, "Length of each song (seconds).")
flags.DEFINE_list("workers", ["1", "2"], "Worker counts (--direct_num_workers) to measure.")
flags.DEFINE_list("running_modes", ["multi_processing"],
                  "DirectRunner running modes to measure: multi_processing, in_memory, "
                  "multi_threading.")

SOURCE_RATE_HZ = 44100


def synthesize_songs(folder: Path, num_songs: int, song_secs: float) -> None:
  """Writes `num_songs` stereo WAVs of decaying tones plus a little noise."""
  rng = np.random.default_rng(0)
  t = np.arange(int(song_secs * SOURCE_RATE_HZ)) / SOURCE_RATE_HZ
  for i in range(num_songs):
    f0 = 110.0 * 2 ** (rng.integers(0, 24, size=int(song_secs * 2) + 1) / 12)
    tone = np.sin(2 * np.pi * np.repeat(f0, SOURCE_RATE_HZ // 2)[:len(t)] * t)
    left = 0.3 * tone * np.exp(-3.0 * (t % 0.5)) + 0.01 * rng.standard_normal(len(t))
    stereo = np.stack([left, 0.8 * left], axis=1).astype(np.float32)
    path = folder / f"song_{i:03d}.wav"
    soundfile.write(str(path), stereo, SOURCE_RATE_HZ, subtype="PCM_16")


def measure(songs: Path, output: Path, mode: str, workers: int) -> dict:
  started = time.time()
  result = prepare.prepare_tfrecord(
      [str(songs)], str(output / f"{mode}_{workers}"), example_secs=1.0,
      eval_split_fraction=0.1, sample_rate_hz=22050,
      pipeline_options=[f"--direct_running_mode={mode}", f"--direct_num_workers={workers}"])
  seconds = time.time() - started
  audio_seconds = sum(s["audio_seconds"] for s in result.manifest["splits"].values())
  return {"mode": mode, "workers": workers, "clips": result.manifest["clips"],
          "audio_seconds": audio_seconds, "wall_seconds": seconds,
          "audio_seconds_per_second": audio_seconds / seconds}


def main(argv):
  del argv
  logging.getLogger("apache_beam").setLevel(logging.WARNING)
  with tempfile.TemporaryDirectory() as tmp:
    songs, output = Path(tmp) / "songs", Path(tmp) / "tfrecords"
    songs.mkdir()
    synthesize_songs(songs, FLAGS.num_songs, FLAGS.song_secs)
    rows = [measure(songs, output, mode, int(workers))
            for mode in FLAGS.running_modes for workers in FLAGS.workers]
  print(f"\n{FLAGS.num_songs} songs x {FLAGS.song_secs:g} s, 44.1 kHz stereo -> 22050 Hz mono "
        f"1 s clips; {os.cpu_count()} CPU cores, load average "
        f"{os.getloadavg()[0]:.1f} at the end")
  print(f"{'running mode':<18}{'workers':>8}{'clips':>8}{'audio s':>10}{'wall s':>9}"
        f"{'audio s / wall s':>18}")
  for row in rows:
    print(f"{row['mode']:<18}{row['workers']:>8}{row['clips']:>8}{row['audio_seconds']:>10.0f}"
          f"{row['wall_seconds']:>9.1f}{row['audio_seconds_per_second']:>18.1f}")


if __name__ == "__main__":
  app.run(main)
