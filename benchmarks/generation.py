r"""Generation end to end, through the Keras model and through the SavedModel export.

Usage:
  python benchmarks/generation.py [--config=soundtracks --clip_song_secs=30 --song_secs=180 \
      --num_outputs=5 --griffin_lim_iters=32 --refine_steps=100 --repetitions=2 --folder=DIR \
      --profile --quick]

The model has `--config`'s sizes (default: the shipped checkpoint's) with random
weights: its speed does not depend on its training. The same weights serve both
backends: `inference.KerasBackend`, and `export.export_model` written to a
temporary folder and loaded back with `export.load_export`. Timed, alternating
the two backends:
  encode       `generation.encode_song` of a `--clip_song_secs` song: every window's mu;
  refine       the same with `--refine_steps` refinement steps per window (`refinement`);
  decode       `generation.decode_song` of that song's latents to stitched audio
               (z -> log-mel -> `--griffin_lim_iters` Griffin-Lim iterations);
  interpolate  `generation.interpolate` of two `--song_secs` songs, `--num_outputs`
               outputs, endpoints included (encode both, slerp, decode, stitch).
x real time is the seconds of audio coming out (encode: going in) per wall second.
For the interpolation, "x song length" is wall time over one song's length (target
< 1). Targets: decode >= 20x real time (the CPU speed RAVE reports for itself).

Songs are synthesized (`common.synth_music`), or, with `--folder`, the first two
of your files, cut to `--song_secs`.
"""

import tempfile
from pathlib import Path

from absl import app
from absl import flags

import common

common.quiet_tensorflow()  # Before TensorFlow is imported.

# pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np

from wave_music_vae import audio_io
from wave_music_vae import checkpoints
from wave_music_vae import config as config_lib
from wave_music_vae import generation
from wave_music_vae import inference
from wave_music_vae import training
from wave_music_vae.model import WaveMusicVAE
# pylint: enable=g-import-not-at-top,wrong-import-position

FLAGS = flags.FLAGS

common.define_flags(repetitions=2)
flags.DEFINE_string("config", "soundtracks", "Config of the model (random weights).")
flags.DEFINE_float("clip_song_secs", 30.0, "Length of the song encoded and decoded (seconds).")
flags.DEFINE_float("song_secs", 180.0, "Length of each interpolated song (seconds).")
flags.DEFINE_integer("num_outputs", 5, "Interpolation outputs, endpoints included.")
flags.DEFINE_integer("griffin_lim_iters", 32, "Griffin-Lim iterations per decoded window.")
flags.DEFINE_integer("refine_steps", 100, "Refinement steps per window in the refine task.")
flags.DEFINE_string("folder", None, "Interpolate the first two of your files in this folder.")


def random_model(config) -> checkpoints.LoadedModel:
  training.seed_everything(config.seed)
  model = WaveMusicVAE(config)
  model.build()
  return checkpoints.LoadedModel(model, config, {}, f"random weights ({config.name})",
                                 Path(tempfile.gettempdir()))


def songs(seconds: float, sample_rate_hz: int):
  """Two songs float32 [samples]: synthesized, or --folder's first two files."""
  if not FLAGS.folder:
    return [common.synth_music(seconds, sample_rate_hz, seed) for seed in (1, 2)]
  paths = common.folder_songs(FLAGS.folder, 2)
  if len(paths) < 2:
    raise SystemExit(f"{FLAGS.folder}: an interpolation needs two files")
  return [audio_io.read_audio(p, sample_rate_hz, duration_seconds=seconds) for p in paths]


def saved_model_backend(loaded, export_dir: Path):
  """(backend, None) from a fresh export, or (None, why) when the export cannot be used."""
  try:
    from wave_music_vae import export  # pylint: disable=g-import-not-at-top
    return export.load_export(export.export_model(loaded, export_dir)), None
  except Exception as e:  # pylint: disable=broad-except  # Reported in the table instead.
    return None, f"{type(e).__name__}: {' '.join(str(e).split())[:160]}"


def main(argv):
  del argv
  config_name, clip_song_secs, song_secs = FLAGS.config, FLAGS.clip_song_secs, FLAGS.song_secs
  iterations, repetitions = FLAGS.griffin_lim_iters, FLAGS.repetitions
  refine_steps = FLAGS.refine_steps
  if FLAGS.quick:
    config_name, clip_song_secs, song_secs, iterations, repetitions = "tiny", 3.0, 5.0, 8, 1
    refine_steps = 5
  config = config_lib.load_config(config_name)
  rate = config.sample_rate_hz
  loaded = random_model(config)
  with tempfile.TemporaryDirectory() as tmp:
    backends = {"Keras": inference.KerasBackend(loaded)}
    saved_model, why_not = saved_model_backend(loaded, Path(tmp) / "export")
    if saved_model is not None:
      backends["SavedModel"] = saved_model
    short_song = common.synth_music(clip_song_secs, rate, seed=0)
    grid = generation.WindowGrid.for_song(len(short_song), config.clip_samples)
    song_1, song_2 = songs(song_secs, rate)
    song_secs = min(len(song_1), len(song_2)) / rate
    latents = {}

    def encode(backend):
      latents[backend.source] = generation.encode_song(backend, short_song, grid)

    def refine(backend):
      generation.encode_song(backend, short_song, grid, refine_steps=refine_steps)

    def decode(backend):
      generation.decode_song(backend, latents[backend.source][:, np.newaxis], grid, iterations)

    def interpolate(backend):
      generation.interpolate(backend, song_1, song_2, FLAGS.num_outputs, iterations)

    tasks = (("encode", encode, clip_song_secs),
             (f"refine {refine_steps}", refine, clip_song_secs),
             ("decode", decode, clip_song_secs),
             ("interpolate", interpolate, FLAGS.num_outputs * song_secs))
    for backend in backends.values():   # Traces every graph, fills `latents`.
      encode(backend)
      decode(backend)
      generation.encode_song(backend, short_song[:config.clip_samples],
                             generation.WindowGrid.for_song(config.clip_samples,
                                                            config.clip_samples), refine_steps=1)
    rows = []
    for name, task, audio_seconds in tasks:
      times = common.alternate({label: lambda b=backend: task(b)
                                for label, backend in backends.items()},
                               repetitions, warmup=())
      for label in backends:
        seconds = common.median(times[label])
        versus_song = f"{seconds / song_secs:.2f}" if name == "interpolate" else ""
        rows.append([name, label, f"{seconds:.2f}", common.spread(times[label]),
                     f"{audio_seconds / seconds:.1f}", versus_song])
      if why_not:
        rows.append([name, "SavedModel", "not measured", "", "", ""])
    if FLAGS.profile:
      keras_backend = backends["Keras"]
      profiled_secs = min(30.0, song_secs)
      profiled = int(profiled_secs * rate)
      print(f"\n### Keras: interpolation of two {profiled_secs:g} s songs (cProfile)")
      print(common.python_profile(lambda: generation.interpolate(
          keras_backend, song_1[:profiled], song_2[:profiled], FLAGS.num_outputs, iterations)))
      indices = [i % grid.num_windows for i in range(generation.BATCH_CLIPS)]
      batch = latents[keras_backend.source][indices]
      print(f"\n### Keras: decode of one batch of {len(indices)} windows (TensorFlow profiler)")
      print(common.op_profile(lambda: keras_backend.decode(batch, iterations)))
      print(f"\n### Keras: encode of one batch of {len(indices)} windows (TensorFlow profiler)")
      windows = grid.windows(short_song, indices)
      print(common.op_profile(lambda: keras_backend.encode(windows)))
  notes = [f"config {config.name} ({config.clip_seconds:g} s windows, z_size {config.z_size}), "
           f"random weights; {iterations} Griffin-Lim iterations; encode/decode of a "
           f"{clip_song_secs:g} s song ({grid.num_windows} windows); interpolation of two "
           f"{song_secs:g} s songs ({'from ' + FLAGS.folder if FLAGS.folder else 'synthesized'})"
           f", {FLAGS.num_outputs} outputs",
           f"median of {repetitions} alternated calls after one warm-up call of encode, refine "
           "and decode; targets: decode >= 20x real time, interpolation x song length < 1"]
  if why_not:
    notes.append(f"SavedModel not measured: {why_not}")
  common.print_table("Generation end to end: wall seconds and x real time",
                     ["task", "backend", "median s", "range s", "x real time", "x song length"],
                     rows, notes)


if __name__ == "__main__":
  app.run(main)
