"""Command-line tools: absl flags -> one library call each. Nothing imports this package."""

import os
import signal
import sys


def _interrupted_while_starting(signum, frame):
  """Ctrl-C while TensorFlow loads (seconds): one line, not an import traceback.

  `common.run_safely` puts Python's own handler back once the command runs.
  """
  del signum, frame
  os.write(2, f"{os.path.basename(sys.argv[0])}: interrupted\n".encode())
  os._exit(130)  # pylint: disable=protected-access  # Nothing is open yet to clean up.


if os.path.basename(sys.argv[0]).startswith("wave_music_vae_"):  # A console script, not a test.
  signal.signal(signal.SIGINT, _interrupted_while_starting)

# TensorFlow's C++ start-up lines (CUDA plugin registration, CPU features) are
# noise to a user; they are set off here, before TensorFlow is imported, unless
# --verbose asks for TensorFlow's own logging.
if not any(arg in ("--verbose", "--verbose=true", "--verbose=True", "--verbose=1")
           for arg in sys.argv[1:]):
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
