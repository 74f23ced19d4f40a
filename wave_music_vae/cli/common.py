"""What every command shares: config flags, and errors as one line, never a traceback."""

import logging
import os
import signal
import sys
import threading
import traceback

from absl import flags
from absl import logging as absl_logging

from wave_music_vae import audio_io
from wave_music_vae import config as config_lib
from wave_music_vae import data

FLAGS = flags.FLAGS

# Errors whose message already says what is wrong, naming the file and the cause.
USER_ERRORS = (config_lib.ConfigError, data.DataError, audio_io.AudioReadError,
               audio_io.AudioWriteError, FileNotFoundError, PermissionError, ValueError)


class UsageError(Exception):
  """A bad combination of flags; the message names the flag."""


class Terminated(KeyboardInterrupt):
  """SIGTERM, raised like Ctrl-C so that every `finally` removes its temporary files."""


def _raise_terminated(signum, frame):
  del signum, frame
  raise Terminated()


def define_config_flags():
  flags.DEFINE_string("config", None, "Name of a config in configs/ (or a JSON file path). "
                      "Valid names: " + ", ".join(config_lib.available_configs()))
  flags.DEFINE_string("hparams", "", "Comma-separated name=value overrides of the config, "
                      "e.g. batch_size=8,z_size=256 (lists use ':', e.g. conv_channels=8:16).")
  flags.DEFINE_bool("verbose", False, "Show tracebacks and TensorFlow's own logging.")


def show_in_help(module_name: str) -> None:
  """Makes `--help` print this tool's usage (its module docstring) and its flags.

  absl's `--help` prints `__main__`'s docstring and the flags it owns; under a pip
  console script `__main__` is pip's wrapper, which owns none, so the help was a
  bare `USAGE: ... [flags]`. The tool's docstring and flags (with the shared ones
  defined here) are registered as the main module's.
  """
  main_module = sys.modules["__main__"]
  if main_module is not sys.modules[module_name]:
    main_module.__doc__ = sys.modules[module_name].__doc__
  for owner in (module_name, __name__):
    for flag in FLAGS.get_key_flags_for_module(owner):
      FLAGS.register_key_flag_for_module(sys.argv[0], flag)


def load_config(name=None):
  name = name or FLAGS.config
  if not name:
    raise UsageError("--config is required; valid configs: "
                     + ", ".join(config_lib.available_configs()))
  return config_lib.load_config(name, config_lib.parse_hparams(FLAGS.hparams))


def expand_home_in_flags() -> None:
  """Expands a leading `~` in every path-like flag value.

  The shell expands `~` only at the start of a word, so `--run_dir=~/runs` reaches
  the program as is; left alone, it would make a folder named `~` in the working
  directory.
  """
  for name in list(FLAGS):
    flag = FLAGS[name]
    if isinstance(flag.value, str) and flag.value.startswith("~"):
      flag.value = os.path.expanduser(flag.value)
    elif isinstance(flag.value, list) and any(isinstance(v, str) and v.startswith("~")
                                              for v in flag.value):
      flag.value = [os.path.expanduser(v) if isinstance(v, str) else v for v in flag.value]


def run_safely(program: str, main, argv) -> int:
  """Calls main(argv) with `~` expanded in its flags; known errors become
  'program: error: message' and exit code 1."""
  verbose = FLAGS["verbose"].value if "verbose" in FLAGS else False
  if not verbose:
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    absl_logging.set_verbosity(absl_logging.WARNING)
  if hasattr(sys.stdout, "reconfigure"):  # Not every stand-in for stdout has it.
    # File names that are not UTF-8 reach print() as surrogates; show them escaped.
    sys.stdout.reconfigure(errors="backslashreplace")
  if threading.current_thread() is threading.main_thread():  # Only it may set handlers.
    # Training installs its own SIGTERM handler (a checkpoint, then exit 0) while it runs.
    signal.signal(signal.SIGTERM, _raise_terminated)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # KeyboardInterrupt from here on.
  try:
    expand_home_in_flags()
    return main(argv) or 0
  except Terminated:
    print(f"{program}: terminated (SIGTERM)", file=sys.stderr)
    return 143
  except KeyboardInterrupt:
    print(f"{program}: interrupted", file=sys.stderr)
    return 130
  except Exception as e:  # pylint: disable=broad-except
    if verbose:
      traceback.print_exc()
    known = isinstance(e, USER_ERRORS + (UsageError,)) or type(e).__module__.startswith(
        "wave_music_vae")
    message = " ".join(str(e).split()) or type(e).__name__
    if not known:
      message = f"{type(e).__name__}: {message} (run with --verbose for the traceback)"
    print(f"{program}: error: {message}", file=sys.stderr)
    return 1
