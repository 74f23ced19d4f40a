"""Two short example clips made by the project, used when a command is given no input.

Rendered by `render.py` (`python -m wave_music_vae.examples.render --overwrite`)
from NoteSequences written out note by note: no recording and no third-party music
is involved. 22050 Hz mono 16-bit WAV, 6 s each.
  example_1_arpeggio.wav  a bright C major / A minor / F / G arpeggio, 8th notes at 120 bpm
  example_2_chords.wav    slow, dark D minor / B flat / F / C chords over a bass line
"""

from pathlib import Path
from typing import Tuple

EXAMPLE_FILES = ("example_1_arpeggio.wav", "example_2_chords.wav")


def example_paths() -> Tuple[Path, Path]:
  """The two shipped example clips (paths inside the installed package)."""
  folder = Path(__file__).resolve().parent
  return tuple(folder / name for name in EXAMPLE_FILES)
