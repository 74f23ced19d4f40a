"""Command-line tools: absl flags -> one library call each. Nothing imports this package."""

import os
import sys

# TensorFlow's C++ start-up lines (CUDA plugin registration, CPU features) are
# noise to a user; they are set off here, before TensorFlow is imported, unless
# --verbose asks for TensorFlow's own logging.
if not any(arg in ("--verbose", "--verbose=true", "--verbose=True", "--verbose=1")
           for arg in sys.argv[1:]):
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
