"""Attribute vectors: MusicVAE's latent arithmetic, for audio.

Over a labelled dataset (GTZAN genres, FMA genres, or the first sub-folder of a
folder of songs), every labelled song gives up to `clips_per_file` clips evenly
spaced through it (`data.folder_dataset`'s eval crops), each clip is encoded to
its encoder mean mu, and for each label

  vector[label] = mean of mu over the label's clips - mean of mu over all clips.

The overall mean weights every clip equally, as the label means do, so the
vectors weighted by their clip counts sum to zero. Adding `amount * vector[label]`
to a song's codes (`generation.LatentEdit.attributes`, `--attribute=jazz:1.5`)
moves it toward that label's region of the latent space. Unlabelled files (songs
at the top of a folder, FMA tracks without a genre) are left out; unreadable files
are skipped and counted; silent clips (below `audio_io.SILENCE_DBFS`: a track's silent
ending, a silent file) are left out and counted, since their codes say nothing of
the label's music.
"""

import dataclasses
from typing import Dict, List

import keras
import numpy as np

from wave_music_vae import audio_io
from wave_music_vae import data
from wave_music_vae.inference import Backend


@dataclasses.dataclass
class AttributeVectors:
  """Result of `compute_attribute_vectors`.

  Attributes:
    vectors: {label: float32 [z_size]}, label mean minus overall mean.
    counts: {label: clips encoded}.
    unlabelled_files: files left out for having no label.
    skipped: the unreadable files, with causes.
    silent_clips: clips left out for being silent.
  """

  vectors: Dict[str, np.ndarray]
  counts: Dict[str, int]
  unlabelled_files: int
  skipped: data.SkippedFiles
  silent_clips: int = 0


def compute_attribute_vectors(backend: Backend, files: List[data.AudioFile],
                              clips_per_file: int = 8, batch_size: int = 16,
                              progress: bool = False) -> AttributeVectors:
  """Each label's mean latent minus the overall mean, over `files` (see module docstring).

  Args:
    backend: the model; its config gives the clip length and rate.
    files: songs with their labels, e.g. `data.list_audio_files(root, layout)`.
    clips_per_file: most clips taken from one song (fewer from a short one).
    batch_size: clips per encoder call.
    progress: show a progress bar (clips encoded).

  Raises:
    data.DataError: fewer than two labels among the files, or readable clips of
      fewer than two.
  """
  labelled = [f for f in files if f.label]
  labels = sorted({f.label for f in labelled})
  if len(labels) < 2:
    raise data.DataError(f"attribute vectors need songs with at least two labels; found "
                         f"{len(labels)} label(s) ({', '.join(labels) or 'none'}) among "
                         f"{len(files)} file(s)")
  if clips_per_file < 1 or batch_size < 1:
    raise data.DataError(f"clips_per_file and batch_size must be positive (got "
                         f"{clips_per_file}, {batch_size})")
  config = dataclasses.replace(backend.config, clips_per_file=clips_per_file)
  skipped = data.SkippedFiles()
  clips = data.folder_dataset(labelled, config, "eval", skipped, batch_size=batch_size,
                              repeat=False)
  sums = {label: np.zeros(config.z_size, np.float64) for label in labels}
  counts = {label: 0 for label in labels}
  bar = keras.utils.Progbar(None, unit_name="clip") if progress else None
  silent_clips = 0
  for batch in clips:
    audio = batch["audio"].numpy()
    audible = audio_io.audible(audio)
    silent_clips += int((~audible).sum())
    if audible.any():
      _, mu, _ = backend.encode(audio[audible])
      for label, code in zip(batch["label"].numpy()[audible], mu):
        label = label.decode("utf-8")
        sums[label] += code
        counts[label] += 1
    if bar:
      bar.add(len(audio))
  present = [label for label in labels if counts[label]]
  if len(present) < 2:
    raise data.DataError(f"readable, audible clips for {len(present)} label(s) only "
                         f"({', '.join(present) or 'none'}); need two; {skipped.summary()}; "
                         f"{silent_clips} silent clip(s) left out")
  overall_mean = sum(sums.values()) / sum(counts.values())
  vectors = {label: (sums[label] / counts[label] - overall_mean).astype(np.float32)
             for label in present}
  return AttributeVectors(vectors, {label: counts[label] for label in present},
                          len(files) - len(labelled), skipped, silent_clips)
