"""Command-line tools: absl flags -> one library call each. Nothing imports this package."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
