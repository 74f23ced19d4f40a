r"""Interpolates, samples, reconstructs or tweaks whole songs, as audio files.

Flags as Magenta's music_vae_generate. Usage:
  wave_music_vae_generate --interpolate --output_dir=out
      (the shipped checkpoint and the two example clips that ship with the package)
  wave_music_vae_generate --run_dir=runs/gtzan --mode=interpolate \
      --input_audio_1=a.mp3 --input_audio_2=b.flac --num_outputs=5 --output_dir=out --plot
  wave_music_vae_generate --checkpoint_file=checkpoints/soundtracks --mode=sample \
      --num_outputs=4 --temperature=0.5 --seed=7 --output_dir=out
  wave_music_vae_generate --mode=reconstruct --input_audio_1=a.wav --refine_steps=100 \
      --output_dir=out
  wave_music_vae_generate --mode=tweak --input_audio_1=a.wav --tweak=3:1.5 --tweak=7:x2 \
      --max_out=12 --flatten=0.2 --attribute=wesnoth:1.5 --output_dir=out
  wave_music_vae_generate --list_attributes

The model comes from exactly one of --checkpoint_file, --run_dir or --saved_model
(default: the shipped checkpoint). --config is optional: the checkpoint carries its
config, and a --config that differs from it is an error. Long inputs are cut into
overlapping clip-long windows and stitched back with crossfades; in interpolation
the outputs take the shorter song's length. Files are named
`<mode>_<date>_<time>-<i>-of-<n>.<format>` (i from 000) and never replace an input,
nor an existing file unless --overwrite.
"""

import math
import sys
from pathlib import Path

import numpy as np
from absl import app
from absl import flags

from wave_music_vae import audio_io
from wave_music_vae import checkpoints
from wave_music_vae import export
from wave_music_vae import generation
from wave_music_vae import inference
from wave_music_vae import latent
from wave_music_vae import plotting
from wave_music_vae import refinement
from wave_music_vae.cli import common
from wave_music_vae.examples import example_paths

FLAGS = flags.FLAGS

common.define_config_flags()
flags.DEFINE_string("checkpoint_file", None, "A shipped checkpoint folder, a run directory or "
                    "a RUN/train/ckpt-N prefix (default: the shipped checkpoint).")
flags.DEFINE_string("run_dir", None, "A training run directory: its newest checkpoint is used.")
flags.DEFINE_string("saved_model", None, "A SavedModel written by wave_music_vae_export.")
flags.DEFINE_enum("mode", None, list(generation.MODES), "What to generate.")
flags.DEFINE_bool("interpolate", False, "Shorthand for --mode=interpolate.")
flags.DEFINE_string("input_audio_1", None, "The input song (first endpoint in interpolation); "
                    "default: the first example clip shipped with the package.")
flags.DEFINE_string("input_audio_2", None, "The second endpoint of an interpolation; default: "
                    "the second example clip.")
flags.DEFINE_integer("num_outputs", 5, "Outputs of interpolate (endpoints included) and sample.")
flags.DEFINE_float("temperature", 0.5, "Sample mode: z ~ N(0, temperature^2 I).")
flags.DEFINE_integer("seed", None, "Sample mode: seed of the draw (default: a random one, "
                     "printed so that the run can be repeated).")
flags.DEFINE_multi_string("tweak", [], "Tweak mode: DIM:VALUE sets latent dimension DIM to "
                          "VALUE; DIM:xFACTOR multiplies it by FACTOR. Repeatable.")
flags.DEFINE_multi_integer("max_out", [], "Tweak mode: push dimension DIM to "
                           "--max_out_stddevs prior standard deviations. Repeatable.")
flags.DEFINE_float("max_out_stddevs", 3.0, "How far --max_out pushes (prior standard deviations).")
flags.DEFINE_float("flatten", 0.0, "Tweak mode: shrink z toward the prior mean by FACTOR in "
                   "[0, 1] (0 keeps it, 1 gives the mean).")
flags.DEFINE_multi_string("attribute", [], "Tweak mode: NAME:AMOUNT adds AMOUNT times the "
                          "attribute vector NAME (see --list_attributes). Repeatable.")
flags.DEFINE_bool("list_attributes", False, "Print the checkpoint's attribute vectors and exit.")
flags.DEFINE_float("max_seconds", None, "Read at most this many seconds of each input.")
flags.DEFINE_enum("output_format", "wav", list(generation.OUTPUT_FORMATS), "Audio file format.")
flags.DEFINE_string("output_dir", None, "Folder for the outputs (created if missing).")
flags.DEFINE_bool("plot", False, "Also write a PNG of the outputs' mel spectrograms "
                  "(interpolation endpoints marked).")
flags.DEFINE_bool("overwrite", False, "Replace existing output files (never an input).")
flags.DEFINE_bool("progress", True, "Show a progress bar.")
flags.DEFINE_integer("griffin_lim_iters", None, "Griffin-Lim iterations (default: the config's).")
flags.DEFINE_integer("refine_steps", 0, "interpolate, reconstruct and tweak: refine each "
                     "window's encoder mean by this many gradient steps on the decoder's error "
                     "before decoding (closer to the input; 100 is a good start, at about one "
                     "decoder pass per step; 0: the encoder mean as is).")

_EDIT_FLAGS = ("tweak", "max_out", "flatten", "attribute")
_INPUTS_PER_MODE = {"interpolate": 2, "sample": 0, "reconstruct": 1, "tweak": 1}


def _mode() -> str:
  if FLAGS.interpolate and FLAGS.mode not in (None, "interpolate"):
    raise common.UsageError(f"--interpolate contradicts --mode={FLAGS.mode}")
  mode = "interpolate" if FLAGS.interpolate else FLAGS.mode
  if not mode:
    raise common.UsageError(f"--mode is required: one of {', '.join(generation.MODES)} "
                            "(or --interpolate)")
  return mode


def _check_flags(mode: str) -> None:
  """Flag combinations, checked before the model is loaded."""
  if not FLAGS.output_dir:
    raise common.UsageError("--output_dir is required")
  takes_inputs = _INPUTS_PER_MODE[mode]
  for number, name in ((1, "input_audio_1"), (2, "input_audio_2")):
    if FLAGS[name].value and number > takes_inputs:
      raise common.UsageError(f"--{name} is not used by --mode={mode}")
  if mode == "interpolate" and bool(FLAGS.input_audio_1) != bool(FLAGS.input_audio_2):
    raise common.UsageError("give both --input_audio_1 and --input_audio_2, or neither "
                            "(then the example clips are used)")
  if mode == "sample" and FLAGS.max_seconds is not None:
    raise common.UsageError("--max_seconds limits input songs; --mode=sample makes one clip each")
  if mode in ("reconstruct", "tweak") and FLAGS["num_outputs"].present:
    raise common.UsageError(f"--num_outputs is not used by --mode={mode} (it writes one file)")
  minimum_outputs = 2 if mode == "interpolate" else 1
  if FLAGS.num_outputs < minimum_outputs:
    raise common.UsageError(f"--num_outputs must be at least {minimum_outputs} for --mode={mode}")
  for name in ("temperature", "seed"):
    if FLAGS[name].present and mode != "sample":
      raise common.UsageError(f"--{name} is only used by --mode=sample")
  if not 0 < FLAGS.temperature <= latent.MAX_TEMPERATURE:  # NaN fails this too.
    raise common.UsageError(f"--temperature must be in (0, {latent.MAX_TEMPERATURE:g}]")
  if FLAGS.seed is not None and not 0 <= FLAGS.seed < 2 ** 31:  # The export's seed is int32.
    raise common.UsageError("--seed must be in [0, 2**31 - 1]")
  edits_given = [name for name in _EDIT_FLAGS + ("max_out_stddevs",) if FLAGS[name].present]
  if mode != "tweak" and edits_given:
    raise common.UsageError(f"--{edits_given[0]} is only used by --mode=tweak")
  if not 0.0 <= FLAGS.flatten <= 1.0:
    raise common.UsageError("--flatten must be in [0, 1]")
  if FLAGS.max_seconds is not None and not 0 < FLAGS.max_seconds < math.inf:
    raise common.UsageError("--max_seconds must be a positive, finite number of seconds")
  if FLAGS.griffin_lim_iters is not None and not (
      1 <= FLAGS.griffin_lim_iters <= export.MAX_GRIFFIN_LIM_ITERS):
    raise common.UsageError(f"--griffin_lim_iters must be in [1, {export.MAX_GRIFFIN_LIM_ITERS}] "
                            "(an export refuses more)")
  if not 0 <= FLAGS.refine_steps <= refinement.MAX_STEPS:
    raise common.UsageError(f"--refine_steps must be in [0, {refinement.MAX_STEPS}]")
  if FLAGS.plot and FLAGS.num_outputs > plotting.MAX_PANELS:
    raise common.UsageError(f"--plot draws one panel per output; at most {plotting.MAX_PANELS} "
                            f"(got --num_outputs={FLAGS.num_outputs})")
  if FLAGS.refine_steps and mode == "sample":
    raise common.UsageError("--refine_steps refines encoded inputs; --mode=sample has none")


def _edit_from_flags() -> generation.LatentEdit:
  sets, scales, attributes = [], [], []
  for text in FLAGS.tweak:
    try:
      kind, dim, value = generation.parse_tweak(text)
    except generation.GenerationError as e:
      raise common.UsageError(f"--tweak: {e}") from None
    (scales if kind == "scale" else sets).append((dim, value))
  for text in FLAGS.attribute:
    try:
      attributes.append(generation.parse_attribute(text))
    except generation.GenerationError as e:
      raise common.UsageError(f"--attribute: {e}") from None
  edit = generation.LatentEdit(tuple(sets), tuple(scales), tuple(FLAGS.max_out),
                               FLAGS.max_out_stddevs, FLAGS.flatten, tuple(attributes))
  if not any(FLAGS[name].present for name in _EDIT_FLAGS):  # --flatten=0 is an edit, of 0.
    raise common.UsageError("--mode=tweak needs at least one of --tweak, --max_out, --flatten "
                            "or --attribute")
  return edit


def load_backend_from_flags() -> inference.Backend:
  """The model the flags name; a clear error when the shipped default is not installed."""
  if FLAGS.hparams and not FLAGS.config:
    raise common.UsageError("--hparams needs --config")
  config = common.load_config() if FLAGS.config else None
  if not (FLAGS.checkpoint_file or FLAGS.run_dir or FLAGS.saved_model):
    default = checkpoints.default_checkpoint()
    if not (default / checkpoints.WEIGHTS_FILE).is_file():
      raise common.UsageError(f"no --checkpoint_file, --run_dir or --saved_model given, and the "
                              f"shipped checkpoint {default} is not installed; name a model "
                              "with one of those flags")
  return inference.load_backend(FLAGS.checkpoint_file, FLAGS.run_dir, FLAGS.saved_model, config)


def _print_attributes(backend) -> None:
  if not backend.attributes:
    how = ("compute them on the checkpoint it was exported from with wave_music_vae_attributes, "
           "then export again" if FLAGS.saved_model else
           "compute them with wave_music_vae_attributes")
    print(f"{backend.source}: no attribute vectors ({how})")
    return
  print(f"{backend.source}: {len(backend.attributes)} attribute vector(s) "
        "(use as --attribute=NAME:AMOUNT)")
  for name, vector in sorted(backend.attributes.items()):
    print(f"  {name}  (norm {np.linalg.norm(vector):.3f})")


def _inputs(mode: str):
  """The input songs' paths: the flags', else the shipped example clips."""
  given = [Path(p) for p in (FLAGS.input_audio_1, FLAGS.input_audio_2) if p]
  return (given or list(example_paths()))[:_INPUTS_PER_MODE[mode]]


# This command's flags that --list_attributes uses; every other one asks for generation.
_LISTING_FLAGS = ("checkpoint_file", "run_dir", "saved_model", "list_attributes", "progress")


def _generation_flags_given():
  """`--name` of each flag given that asks for something to be generated."""
  return [f"--{flag.name}" for flag in FLAGS.get_flags_for_module(sys.modules[__name__])
          if flag.present and flag.name not in _LISTING_FLAGS]


def main(argv):
  if len(argv) > 1:
    raise common.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  if FLAGS.list_attributes:
    generating = _generation_flags_given()
    if generating:
      raise common.UsageError(f"--list_attributes lists the model's attribute vectors and "
                              f"generates nothing; drop {', '.join(generating)}")
    _print_attributes(load_backend_from_flags())
    return 0
  mode = _mode()
  _check_flags(mode)
  edit = _edit_from_flags() if mode == "tweak" else None
  inputs = _inputs(mode)
  num_outputs = FLAGS.num_outputs if mode in ("interpolate", "sample") else 1
  date_and_time = generation.timestamp()
  paths = generation.output_paths(FLAGS.output_dir, mode, num_outputs, FLAGS.output_format,
                                  date_and_time)
  plot = generation.plot_path(FLAGS.output_dir, mode, date_and_time) if FLAGS.plot else None
  existed = generation.check_outputs(paths + ([plot] if plot else []), inputs, FLAGS.overwrite)

  backend = load_backend_from_flags()
  config = backend.config
  if edit is not None:
    edit.check(config.z_size, backend.attributes)
  songs = [audio_io.read_audio(p, config.sample_rate_hz, duration_seconds=FLAGS.max_seconds)
           for p in inputs]
  print(f"model: {backend.source} (config {config.name}, {config.clip_seconds:g} s clips, "
        f"z_size {config.z_size}); inputs: {', '.join(map(str, inputs)) or 'none'}")
  options = dict(griffin_lim_iters=FLAGS.griffin_lim_iters, progress=FLAGS.progress)
  refine = dict(refine_steps=FLAGS.refine_steps)
  if mode == "interpolate":
    generated = generation.interpolate(backend, songs[0], songs[1], num_outputs, **options,
                                       **refine)
  elif mode == "sample":
    seed = FLAGS.seed if FLAGS.seed is not None else int(np.random.default_rng().integers(2**31))
    print(f"sampling with --seed={seed} --temperature={FLAGS.temperature:g}")
    generated = generation.sample(backend, num_outputs, FLAGS.temperature, seed, **options)
  elif mode == "reconstruct":
    generated = generation.reconstruct(backend, songs[0], **options, **refine)
  else:
    generated = generation.tweak(backend, songs[0], edit, **options, **refine)

  with generation.claimed_outputs(FLAGS.output_dir, mode, num_outputs, FLAGS.output_format,
                                  date_and_time, FLAGS.plot, existed) as (paths, plot):
    written = generation.write_outputs(generated, paths, FLAGS.overwrite)
    seconds = generated.waveforms.shape[-1] / generated.sample_rate_hz
    print(f"\nwrote {len(written)} song(s) ({seconds:.2f} s of audio each) to "
          f"{FLAGS.output_dir}:")
    for path in written:
      print(f"  {path.name}")
    if plot:
      plotting.plot_spectrograms(
          generated.waveforms, config, generated.labels, generated.marked, plot,
          title=f"{mode}: {' -> '.join(p.name for p in inputs) or backend.source}",
          overwrite=FLAGS.overwrite)
      print(f"and their spectrograms: {plot.name}")
  return 0


def run(argv):
  return common.run_safely("wave_music_vae_generate", main, argv)


def console_entry_point():
  common.show_in_help(__name__)
  app.run(lambda argv: sys.exit(run(argv)))


if __name__ == "__main__":
  console_entry_point()
