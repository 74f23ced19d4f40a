r"""Renders the two example clips from NoteSequences (run once; the WAVs are shipped).

Usage:
  python -m wave_music_vae.examples.render [--output_dir=DIR] [--overwrite]

Each clip is a `note_seq.NoteSequence` built here note by note and rendered by
`synthesize`, a small additive synthesizer over the sequence's notes: each note
is a sum of harmonics with a 10 ms attack, an exponential decay and a 60 ms release
(note_seq's own `midi_synth.synthesize` starts notes without an attack, which
clicks, and fluidsynth is not a dependency). The mix is cut to `CLIP_SECONDS`,
peak-normalised to `PEAK` and written as 16-bit WAV.
"""

import sys
from pathlib import Path

import note_seq
import numpy as np
from absl import app
from absl import flags

from wave_music_vae import audio_io
from wave_music_vae.examples import EXAMPLE_FILES

SAMPLE_RATE_HZ = 22050
CLIP_SECONDS = 6.0
PEAK = 0.5

FLAGS = flags.FLAGS


def _define_flags():
  """Only when run as a program: importing this module must not claim flag names that the
  command-line tools define too (`--output_dir`)."""
  flags.DEFINE_string("output_dir", str(Path(__file__).resolve().parent),
                      "Where to write the WAVs (default: this package folder).")
  flags.DEFINE_bool("overwrite", False, "Replace existing example files.")


def _sequence(notes, qpm: float):
  """NoteSequence from (pitch, start_s, end_s, velocity) tuples at `qpm` quarters a minute."""
  sequence = note_seq.NoteSequence(ticks_per_quarter=220)
  sequence.tempos.add(qpm=qpm)
  for pitch, start, end, velocity in notes:
    sequence.notes.add(pitch=pitch, start_time=start, end_time=end, velocity=velocity,
                       instrument=0, program=0)
  sequence.total_time = max(end for _, _, end, _ in notes)
  return sequence


def arpeggio_notes():
  """C - Am - F - G, each chord arpeggiated up and down in 8th notes at 120 bpm (0.25 s)."""
  chords = [(60, 64, 67, 72), (57, 60, 64, 69), (53, 57, 60, 65), (55, 59, 62, 67)]
  notes = []
  for bar, chord in enumerate(chords):
    pattern = list(chord) + list(chord[::-1])
    for step, pitch in enumerate(pattern[:6]):
      start = bar * 1.5 + step * 0.25
      notes.append((pitch + 12, start, start + 0.3, 90))
    notes.append((chord[0] - 12, bar * 1.5, bar * 1.5 + 1.4, 70))
  return notes


def chord_notes():
  """Dm - Bb - F - C as sustained low chords (1.5 s each) with a bass note on each half."""
  chords = [(50, 53, 57), (46, 50, 53), (41, 45, 48), (48, 52, 55)]
  notes = []
  for bar, chord in enumerate(chords):
    start = bar * 1.5
    notes += [(pitch, start, start + 1.4, 75) for pitch in chord]
    bass = chord[0] - 12
    notes += [(bass, start, start + 0.7, 95), (bass, start + 0.75, start + 1.4, 80)]
  return notes


def synthesize(sequence, amplitudes, decay_seconds: float) -> np.ndarray:
  """NoteSequence -> float32 [CLIP_SECONDS * SAMPLE_RATE_HZ], peak `PEAK`.

  amplitudes: relative amplitude of harmonics 1, 2, ...; decay_seconds: time
  constant of each note's exponential decay.
  """
  num_samples = int(CLIP_SECONDS * SAMPLE_RATE_HZ)
  mix = np.zeros(num_samples + SAMPLE_RATE_HZ, np.float64)
  amplitudes = np.asarray(amplitudes, np.float64) / np.sum(amplitudes)
  attack, release = int(0.010 * SAMPLE_RATE_HZ), int(0.060 * SAMPLE_RATE_HZ)
  for note in sequence.notes:
    start = int(round(note.start_time * SAMPLE_RATE_HZ))
    length = int(round((note.end_time - note.start_time) * SAMPLE_RATE_HZ)) + release
    t = np.arange(length) / SAMPLE_RATE_HZ
    hz = 440.0 * 2.0 ** ((note.pitch - 69) / 12.0)
    tone = sum(a * np.sin(2 * np.pi * (k + 1) * hz * t) for k, a in enumerate(amplitudes)
               if (k + 1) * hz < SAMPLE_RATE_HZ / 2)
    envelope = np.exp(-t / decay_seconds) * np.minimum(1.0, np.arange(length) / attack)
    envelope[-release:] *= np.linspace(1.0, 0.0, release)
    mix[start:start + length] += (note.velocity / 127.0) * envelope * tone
  mix = mix[:num_samples]
  return (PEAK * mix / np.max(np.abs(mix))).astype(np.float32)


def render_examples(output_dir, overwrite: bool = False):
  """Writes both examples to `output_dir`; returns their paths."""
  output_dir = Path(output_dir)
  output_dir.mkdir(parents=True, exist_ok=True)
  bright = [1.0, 0.6, 0.45, 0.3, 0.25, 0.15, 0.1, 0.08]   # Many harmonics: reedy, bright.
  mellow = [1.0, 0.15, 0.08]                              # Nearly pure: soft, dark.
  clips = [synthesize(_sequence(arpeggio_notes(), 120.0), bright, decay_seconds=0.3),
           synthesize(_sequence(chord_notes(), 80.0), mellow, decay_seconds=1.5)]
  return [audio_io.write_audio(output_dir / name, clip, SAMPLE_RATE_HZ, overwrite)
          for name, clip in zip(EXAMPLE_FILES, clips)]


def main(argv):
  if len(argv) > 1:
    print(f"unexpected arguments: {' '.join(argv[1:])}", file=sys.stderr)
    return 1
  try:
    paths = render_examples(FLAGS.output_dir, FLAGS.overwrite)
  except audio_io.AudioWriteError as e:
    print(f"render: error: {e}", file=sys.stderr)
    return 1
  for path in paths:
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KB)")
  return 0


if __name__ == "__main__":
  _define_flags()
  app.run(lambda argv: sys.exit(main(argv)))
