"""Input pipelines: song folders (GTZAN, FMA, any folder) and TFRecords of clips.

Every reader yields a `tf.data.Dataset` of dicts:
  `audio` float32 [batch, clip_samples] at the config's rate, in [-1, 1];
  `label` string [batch] (genre, album, sub-folder; '' when there is none).

Splits are by *file*, so no song's clips land in both train and eval: a stable hash
(SHA-1) of the path relative to the dataset root puts each song on one side (the
config's `split_method` "hash"), or the dataset's official split does ("official":
GTZAN's fault-filtered split, FMA's tracks.csv; see `file_splits`). Training takes
`clips_per_file` random crops each time a file is visited (a `edge_crop_fraction` share
of them the song's first or last clip); eval takes up to `clips_per_file` fixed crops
evenly spaced through each file.
Files shorter than a clip are zero-padded at the end.

A file that cannot be read is skipped with one warning naming it and the cause,
and counted in `SkippedFiles` for the run's summary.

TFRecord feature spec (one `tf.train.Example` per clip; written by
`make_example` and by `wave_music_vae_prepare_tfrecord`):
  `audio`           float_list  mono samples in [-1, 1] (any length; cropped or padded)
  `sample_rate_hz`  int64       must equal the config's rate
  `label`           bytes       genre / album / sub-folder, '' if none
  `source_path`     bytes       the song's path relative to its dataset root
  `offset_seconds`  float       where the clip starts in the song (float32: a sample off past
                                ~512 s at 22050 Hz)
  `offset_samples`  int64       the same, exactly, in samples at `sample_rate_hz` (-1 in
                                records written before it was added)
  `split`           bytes       'train' or 'eval' (from `file_splits`)
"""

import csv
import dataclasses
import fnmatch
import functools
import hashlib
import itertools
import json
import logging
import math
import os
import posixpath
import re
import threading
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np
import tensorflow as tf

from wave_music_vae import audio_io
from wave_music_vae import paths as paths_lib

TFRECORD_FEATURES = {
    "audio": tf.io.VarLenFeature(tf.float32),
    "sample_rate_hz": tf.io.FixedLenFeature([], tf.int64),
    "label": tf.io.FixedLenFeature([], tf.string, default_value=""),
    "source_path": tf.io.FixedLenFeature([], tf.string, default_value=""),
    "offset_seconds": tf.io.FixedLenFeature([], tf.float32, default_value=0.0),
    "offset_samples": tf.io.FixedLenFeature([], tf.int64, default_value=-1),
    "split": tf.io.FixedLenFeature([], tf.string, default_value="train"),
}
SPLITS = ("train", "eval")
# wave_music_vae_prepare_tfrecord's manifest beside its shards (`prepare.manifest_path`).
MANIFEST_PATTERN = "manifest-*.json"
# GTZAN's fault-filtered split (Kereliuk, Sturm & Larsen, "Deep Learning and Music
# Adversaries", IEEE Trans. Multimedia 2015): file stems under train, valid and test (443,
# 197, 290; its 70 faulty files in none), as torchaudio's datasets/gtzan.py lists them.
GTZAN_FAULT_FILTERED = Path(__file__).resolve().parent / "splits" / "gtzan_fault_filtered.json"
# An official split's names for its parts -> ours. Its validation part ('valid',
# 'validation') is in neither: the training loop selects no model, so eval is its test part.
OFFICIAL_TO_SPLIT = {"train": "train", "training": "train", "test": "eval"}


class DataError(ValueError):
  """A dataset that cannot be used at all (no files, no readable audio, bad layout)."""


@dataclasses.dataclass(frozen=True)
class AudioFile:
  path: str             # Absolute or as given.
  relative_path: str    # Relative to the dataset root: what the split hashes.
  label: str = ""


class SkippedFiles:
  """Thread-safe record of unreadable files: warns once per file, counts them all."""

  def __init__(self):
    self._lock = threading.Lock()
    self.causes = {}

  def add(self, path: str, cause: str) -> None:
    with self._lock:
      if path in self.causes:
        return
      self.causes[path] = cause
    logging.warning("skipped unreadable audio %s", cause)

  def __len__(self):
    with self._lock:
      return len(self.causes)

  def summary(self) -> str:
    return f"{len(self)} unreadable file(s) skipped"


def printable(name: str) -> str:
  """A file or folder name with the bytes that are not UTF-8 (which Python keeps as
  surrogates, e.g. a Latin-1 'Café') replaced by U+FFFD, so it can be a label,
  a tensor or JSON."""
  return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def split_of(relative_path: str, eval_fraction: float) -> str:
  """'train' or 'eval' for a file, from a stable hash of its relative path.

  The hash is of the path's bytes, so a name that is not UTF-8 hashes too.
  """
  raw = relative_path.replace("\\", "/").encode("utf-8", "surrogateescape")
  digest = hashlib.sha1(raw).hexdigest()
  return "eval" if int(digest[:8], 16) / 2 ** 32 < eval_fraction else "train"


GTZAN_GENRES = ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop",
                "reggae", "rock")


FOLDER_LAYOUT_HINT = ("for folders of your own, the folder layout: --hparams=data_layout=folder "
                      "to train, --data_layout=folder for wave_music_vae_attributes")


def is_hidden(name: str) -> bool:
  """Dot-files and dot-folders (macOS's `._song.mp3` AppleDouble twins, `.Trash-1000`) and the
  `__MACOSX` folder of a zip made on a Mac: metadata, not songs."""
  return name.startswith(".") or name == "__MACOSX"


def _audio_paths(root: Path, extensions=audio_io.AUDIO_EXTENSIONS) -> List[Path]:
  """Sorted audio files below `root`, through symlinked folders too, hidden ones passed over.

  Each real folder and each real file is listed once, under the path that comes first in
  sorted order (folders are walked sorted, so this does not depend on the file system's
  directory order): a song linked into a second folder would otherwise be two songs,
  split and labelled independently, and could be trained on and evaluated on. A symlink
  loop ends. A dangling symlink with an audio name is listed, so that reading it skips
  and counts it ("no such file") rather than losing it silently; folders, FIFOs and
  other non-files are not.
  """
  found, walked = [], set()
  for folder, subfolders, names in os.walk(root, followlinks=True):
    real = os.path.realpath(folder)
    if real in walked:
      subfolders[:] = []
      continue
    walked.add(real)
    subfolders[:] = sorted(name for name in subfolders if not is_hidden(name))
    for name in names:
      path = Path(folder) / name
      if (path.suffix.lower() in extensions and not is_hidden(name)
          and (path.is_file() or path.is_symlink())):
        found.append(path)
  unique, seen = [], set()
  for path in sorted(found):
    real = os.path.realpath(path)
    if real not in seen:
      seen.add(real)
      unique.append(path)
  return unique


def list_folder(root) -> List[AudioFile]:
  """Every audio file below `root`, recursively; the first sub-folder is the label."""
  root = Path(root)
  files = []
  for path in _audio_paths(root):
    relative = path.relative_to(root)
    label = printable(relative.parts[0]) if len(relative.parts) > 1 else ""
    files.append(AudioFile(str(path), relative.as_posix(), label))
  return files


def list_gtzan(root) -> List[AudioFile]:
  """GTZAN: `genres/<genre>/<genre>.NNNNN.au` or `genres_original/<genre>/*.wav`.

  `root` may be the dataset folder holding `genres/` or `genres_original/`, or one
  of those folders itself. The genre folder is the label.

  Raises:
    DataError: `root` is a folder of songs without genre sub-folders, or one whose
      sub-folders are none of GTZAN's genres (a folder above the dataset, whose
      sub-folder names would silently become the labels).
  """
  root = Path(root)
  for candidate in (root / "genres_original", root / "genres", root / "Data" / "genres_original"):
    if candidate.is_dir():
      files = [f for f in list_folder(candidate) if f.label]
      if files:
        return files
  files = list_folder(root)
  labelled = [f for f in files if f.label]
  labels = sorted({f.label for f in labelled})
  if files and not labelled:
    raise DataError(f"{root}: no genre sub-folders; the gtzan layout reads "
                    f"genres/<genre>/*.au ({FOLDER_LAYOUT_HINT})")
  if labels and not {label.lower() for label in labels} & set(GTZAN_GENRES):
    shown = ", ".join(labels[:5]) + (", ..." if len(labels) > 5 else "")
    raise DataError(f"{root}: none of its sub-folders ({shown}) is a GTZAN genre; give the "
                    f"folder that holds genres/ or genres_original/ ({FOLDER_LAYOUT_HINT})")
  return labelled


def fma_relative_path(path: str, relative_path: str) -> str:
  """An FMA track's path as the split hashes it: `NNN/NNNNNN.mp3`, the folder and file of
  the track at `path`, whichever level of the dataset was given (`fma/`, `fma/fma_small/`,
  `fma/fma_small/000/`, a pattern over any), so that a track is on the same side of the
  split every way it is read. Other files keep `relative_path` (below the root given)."""
  parts = path.replace("\\", "/").split("/")
  if len(parts) >= 2 and _track_id(Path(parts[-1]).stem) is not None:
    return "/".join(parts[-2:])
  return relative_path


def _track_id(stem: str) -> Optional[int]:
  """An FMA file name's track id (`000002` -> 2), or None for any other name (also for
  digits `int` refuses, such as a superscript two)."""
  return int(stem) if stem.isascii() and stem.isdigit() else None


def _fma_tracks_csv(root: Path) -> Optional[Path]:
  """FMA's `fma_metadata/tracks.csv` in `root` or beside it (in its parent), or None."""
  for tracks in (root / "fma_metadata" / "tracks.csv", root.parent / "fma_metadata" / "tracks.csv"):
    if tracks.is_file():
      return tracks
  return None


def _fma_genres(root: Path) -> Optional[dict]:
  """track_id -> genre_top from `fma_metadata/tracks.csv`; None when neither `root` nor its
  parent holds one, {} when it has no genre_top column.

  Raises:
    DataError: the file is there but is not FMA's tracks.csv (empty, cut short, not UTF-8).
  """
  tracks = _fma_tracks_csv(root)
  if tracks is None:
    return None
  genres = _tracks_column(tracks, "track", "genre_top")
  return {} if genres is None else genres


def _tracks_column(tracks: Path, group: str, name: str) -> Optional[dict]:
  """track_id -> the value in column (`group`, `name`) of FMA's tracks.csv `tracks` (three
  header rows, then a row per track); None when it has no such column.

  Raises:
    DataError: the file is not FMA's tracks.csv (empty, cut short, not UTF-8).
  """
  values = {}
  try:
    with open(tracks, newline="", encoding="utf-8") as f:
      reader = csv.reader(f)
      header = list(itertools.islice(reader, 3))
      if len(header) < 3:
        raise DataError(f"{tracks}: not FMA's tracks.csv ({len(header)} line(s); it has three "
                        "header rows, then a row per track)")
      top, second = header[0], header[1]
      column = next((i for i, (a, b) in enumerate(zip(top, second))
                     if a == group and b == name), None)
      if column is None:
        return None
      for row in reader:
        track_id = _track_id(row[0]) if row else None
        if track_id is not None and len(row) > column:
          values[track_id] = row[column]
  except (UnicodeDecodeError, csv.Error, OSError) as e:
    raise DataError(f"{tracks}: cannot read FMA's track metadata ({e})") from None
  return values


def list_fma(root) -> List[AudioFile]:
  """FMA: `fma_*/NNN/NNNNNN.mp3`; genre_top from `fma_metadata/tracks.csv` when present.

  `root` may be the folder holding `fma_small/` (and `fma_metadata/`) or `fma_small/`
  itself; tracks split the same way from either (`fma_relative_path`).

  A track id found more than once (`fma_small` is a subset of `fma_medium`, so both
  under one root repeat every small track) is listed once, from the first folder in
  sorted order, so that no track lands in both the train and the eval split.
  """
  root = Path(root)
  genres = _fma_genres(root)
  files, track_ids, repeated = [], set(), 0
  for path in _audio_paths(root, (".mp3",)):
    track_id = _track_id(path.stem)
    if track_id is not None and track_id in track_ids:
      repeated += 1
      continue
    label = (genres or {}).get(track_id, "")
    if track_id is not None:
      track_ids.add(track_id)
    files.append(AudioFile(str(path), fma_relative_path(path.as_posix(),
                                                         path.relative_to(root).as_posix()),
                           label))
  if repeated:
    logging.warning("%s: %d FMA track(s) found in more than one folder, each listed once",
                    root, repeated)
  if genres is None and files:
    logging.warning("%s: no fma_metadata/tracks.csv in it or beside it: its tracks have no "
                    "genre labels (give the folder that holds fma_metadata/)", root)
  return files


LISTERS = {"gtzan": list_gtzan, "fma": list_fma, "folder": list_folder}


def _not_a_folder(path) -> DataError:
  """The error for a path that should be a folder of songs but is not."""
  path = Path(path)
  if any(c in path.name for c in "*?[") and path.suffix.lower() in audio_io.AUDIO_EXTENSIONS:
    return DataError(f"{path}: a pattern of audio files; give the folder that holds them (every "
                     "song below it is read)")
  if any(c in path.name for c in "*?["):
    return DataError(f"{path}: a file pattern, not a folder of songs (this command reads songs "
                     "from a folder; TFRecords are read by wave_music_vae_train and _evaluate)")
  if path.is_file() and path.suffix.lower() in audio_io.AUDIO_EXTENSIONS:
    return DataError(f"{path}: an audio file, not a folder of songs (put it in a folder and "
                     "give the folder)")
  if path.exists():
    return DataError(f"{path}: not a folder")
  return DataError(f"{path}: no such folder")


def list_audio_files(root, layout: str) -> List[AudioFile]:
  if layout not in LISTERS:
    raise DataError(f"layout {layout!r} lists no folder; valid: {', '.join(LISTERS)}")
  if not Path(root).is_dir():
    raise _not_a_folder(root)
  return LISTERS[layout](root)


def _stem(relative_path: str) -> str:
  """A file's name without its extension: `blues.00012` for `blues/blues.00012.au`."""
  return posixpath.splitext(posixpath.basename(relative_path))[0]


def _gtzan_official(files: List[AudioFile], roots: List[Path]) -> List[Optional[str]]:
  """Each file's part of GTZAN's fault-filtered split ('train', 'valid', 'test'), by its
  stem (`blues.00012` of `blues.00012.au` or `Blues.00012.wav`), or None if unlisted."""
  del roots  # The split names files, wherever the dataset lies.
  lists = json.loads(GTZAN_FAULT_FILTERED.read_text(encoding="utf-8"))
  part_of = {stem: part for part in ("train", "valid", "test") for stem in lists[part]}
  return [part_of.get(_stem(f.relative_path).lower()) for f in files]


def _fma_official(files: List[AudioFile], roots: List[Path]) -> List[Optional[str]]:
  """Each track's (`set`, `split`) in FMA's tracks.csv ('training', 'validation', 'test'),
  from the first of `roots` that holds one or sits beside one; None if unlisted or empty.

  Raises:
    DataError: no root has tracks.csv, or it has no (set, split) column.
  """
  tracks = next(filter(None, map(_fma_tracks_csv, roots)), None)
  if tracks is None:
    raise DataError(f"{roots[0] / 'fma_metadata' / 'tracks.csv'}: no such file (nor beside "
                    f"{roots[0]}): split_method=official reads FMA's split from it (give the "
                    "folder that holds fma_metadata/)")
  parts = _tracks_column(tracks, "set", "split")
  if parts is None:
    raise DataError(f"{tracks}: no (set, split) column, where split_method=official reads "
                    "FMA's split")
  return [parts.get(_track_id(_stem(f.relative_path))) or None for f in files]


# Layouts with an official split -> each file's part of it (see `file_splits`).
OFFICIAL_SPLITS = {"gtzan": _gtzan_official, "fma": _fma_official}


def file_splits(files: List[AudioFile], layout: str, split_method: str, eval_fraction: float,
                roots: List[str]) -> List[Optional[str]]:
  """Each of `files`' split: 'train', 'eval', or None for a file in neither.

  `split_method` "hash": `split_of` each file's relative path at `eval_fraction`.
  "official": the dataset's own split (`OFFICIAL_SPLITS`): its training files train, its
  test files eval (the training loop selects no model, so held-out figures are the test
  split's, as papers report them); its validation files, and files it does not list
  (GTZAN's 70 faulty files; FMA tracks missing from tracks.csv or with no split), are in
  neither, counted in one warning.

  Args:
    files: as listed from `roots` with `layout`.
    roots: the folders (or patterns' roots) they were listed from; FMA's tracks.csv is
      read in or beside the first that has one.

  Raises:
    DataError: "official" for a layout without an official split, or FMA without tracks.csv.
  """
  if split_method == "hash":
    return [split_of(f.relative_path, eval_fraction) for f in files]
  if layout not in OFFICIAL_SPLITS:
    raise DataError(f"{roots[0]}: split_method={split_method}, but the {layout} layout has no "
                    f"official split (only {' and '.join(OFFICIAL_SPLITS)} have one); use "
                    "split_method=hash for folders of your own")
  parts = OFFICIAL_SPLITS[layout](files, [Path(root) for root in roots])
  splits = [OFFICIAL_TO_SPLIT.get(part) for part in parts]
  unlisted = parts.count(None)
  if None in splits:
    logging.warning("%s: %d validation file(s) and %d file(s) that %s's official split does "
                    "not list are in neither split (split_method=%s)", roots[0],
                    splits.count(None) - unlisted, unlisted, layout, split_method)
  return splits


def split_setting(config) -> str:
  """How `config` splits songs, for messages: `eval_fraction=0.1` or `split_method=official`."""
  if config.split_method == "hash":
    return f"eval_fraction={config.eval_fraction:g}"
  return f"split_method={config.split_method}"


def first_readable(files: List[AudioFile], sample_rate_hz: int, skipped: SkippedFiles) -> str:
  """Path of the first file whose first second decodes; fails early when none does."""
  for f in files:
    try:
      audio_io.read_audio(f.path, sample_rate_hz, duration_seconds=1.0)
      return f.path
    except audio_io.AudioReadError as e:
      skipped.add(f.path, str(e))
  raise DataError(f"no readable audio among {len(files)} file(s); {skipped.summary()}")


def _fit(audio: tf.Tensor, clip_samples: int) -> tf.Tensor:
  """Zero-pads [n] at the end to at least clip_samples."""
  return tf.pad(audio, [[0, tf.maximum(clip_samples - tf.shape(audio)[0], 0)]])


def random_crops(audio: tf.Tensor, clip_samples: int, count: int,
                 edge_fraction: float = 0.0) -> tf.Tensor:
  """[n] -> [count, clip_samples], each from a uniform random start.

  With `edge_fraction` > 0, that share of the crops (in expectation) is instead the song's
  first clip (half of them) or its last clip (the other half). A uniform start almost
  never lands on either, yet every song that is generated from, reconstructed or
  interpolated begins with its first window and ends with its last: intros out of
  silence and fades into it, which otherwise the model hardly sees.
  """
  audio = _fit(audio, clip_samples)
  max_start = tf.shape(audio)[0] - clip_samples
  starts = tf.random.uniform([count], 0, max_start + 1, dtype=tf.int32)
  if edge_fraction > 0.0:
    draw = tf.random.uniform([count])
    starts = tf.where(draw < edge_fraction / 2.0, 0,
                      tf.where(draw < edge_fraction, max_start, starts))
  return tf.map_fn(lambda s: audio[s:s + clip_samples], starts, fn_output_signature=tf.float32)


def fixed_crops(audio: tf.Tensor, clip_samples: int, count: int) -> tf.Tensor:
  """[n] -> [k, clip_samples], k = min(count, n // clip) (>= 1) clips evenly spaced."""
  audio = _fit(audio, clip_samples)
  n = tf.shape(audio)[0]
  k = tf.clip_by_value(n // clip_samples, 1, count)
  span = n - clip_samples
  # Integer arithmetic: in float32, graph-mode rewrites of i * span / (k - 1) can round
  # the last start past `span` for songs over ~6 minutes, giving a clip one sample short.
  starts = tf.range(k, dtype=tf.int64) * tf.cast(span, tf.int64) // tf.cast(
      tf.maximum(k - 1, 1), tf.int64)
  starts = tf.where(k > 1, tf.cast(starts, tf.int32), tf.fill([k], span // 2))
  return tf.map_fn(lambda s: audio[s:s + clip_samples], starts, fn_output_signature=tf.float32)


MAX_DECODE_SECONDS = 600.0  # Longer files (DJ mixes) are read in windows of this length.


def _decoder(sample_rate_hz: int, skipped: SkippedFiles, training: bool, seed: int,
             max_decode_seconds: float, eval_crops: Optional[Tuple[int, int]] = None,
             cache: bool = False):
  """py_function body: path -> (audio [n] float32, ok). Never raises.

  Files longer than `max_decode_seconds` are not decoded whole, so a 3-hour mix costs
  no more memory than a 10-minute song: training reads a random window of that length
  each visit; eval, given `eval_crops` = (clip_samples, count), reads just the clips that
  `fixed_crops` would take from the whole file (at most `count`, evenly spaced from its
  first to its last clip) and returns them end to end, where `fixed_crops(audio,
  clip_samples, count)` finds them again (a window that fails to read is left out);
  eval without `eval_crops` reads the window in the middle.
  (The length comes from the file's header, or ffmpeg's probe where libsndfile cannot
  read it; a file whose length neither tells, such as a FLAC written to a pipe, is read
  from its start, one window at most.)
  With `cache`, what is read is kept in memory and returned again on later visits: a
  song, or one of a long file's training windows (a grid of them: see
  `training_window`), so training still sees all of a long file; a file found
  unreadable is not tried again. (tf.data's `cache()` would replay the one window of a
  long file that its first pass read.)
  """
  rng = np.random.default_rng(seed)
  kept = {}            # path or (path, window) -> samples, with `cache`.
  durations = {}       # path -> seconds or None, with `cache`.
  unreadable = set()   # With `cache`.

  def spread_clips(path, total_seconds):
    clip_samples, count = eval_crops
    clip_seconds = clip_samples / sample_rate_hz
    count = min(count, max(1, int(total_seconds * sample_rate_hz) // clip_samples))
    span = total_seconds - clip_seconds
    starts = np.linspace(0.0, span, count) if count > 1 else [span / 2]
    clips, first_error = [], None
    for start in starts:
      try:
        window = audio_io.read_audio(path, sample_rate_hz, float(start), clip_seconds)
      except audio_io.AudioReadError as e:
        # A header that overstates the length (a truncated VBR MP3) fails the last
        # windows: the clips that read are kept (fixed_crops finds them as well).
        first_error = first_error or e
        continue
      clip = np.zeros([clip_samples], np.float32)   # A read may be a sample short.
      clip[:len(window)] = window[:clip_samples]
      clips.append(clip)
    if not clips:
      raise first_error
    return np.concatenate(clips)

  def training_window(total_seconds):
    """(offset in seconds, its window number or None) of a long file's training window: a
    random offset; with `cache`, one of a grid of windows overlapping by half (so every
    clip of up to half a window lies whole in one), each kept once read."""
    spare = total_seconds - max_decode_seconds
    if not cache:
      return float(rng.uniform(0.0, spare)), None
    hop = max_decode_seconds / 2
    window = int(rng.integers(math.ceil(spare / hop) + 1))
    return min(window * hop, spare), window

  def duration(path):
    """The file's length in seconds, or None where neither its header nor ffmpeg says;
    probed once per file with `cache`."""
    if path not in durations:
      try:
        total = audio_io.duration_seconds(path)
      except audio_io.AudioReadError:
        total = None  # read_audio says why, if the file is not audio at all.
      if not cache:
        return total
      durations[path] = total
    return durations[path]

  def plan(path):
    """What to read of `path`: (offset s, duration s or None for the whole file, key to
    keep the samples under with `cache`, or None not to keep them). An offset of None
    means eval's clips spread through the whole file, whose length is then the duration."""
    total = duration(path)
    if total is None:
      return 0.0, max_decode_seconds, None   # Kept below if it turns out to be whole.
    if total <= max_decode_seconds:
      return 0.0, None, path
    if eval_crops and not training:
      return None, total, None                # spread_clips
    if not training:
      return (total - max_decode_seconds) / 2, max_decode_seconds, (path, "middle")
    offset, window = training_window(total)
    return offset, max_decode_seconds, None if window is None else (path, window)

  def read(path):
    if path in kept:   # A song kept whole.
      return kept[path]
    offset, seconds, key = plan(path)
    if key in kept:
      return kept[key]
    if offset is None:
      return spread_clips(path, seconds)
    audio = audio_io.read_audio(path, sample_rate_hz, offset, seconds)
    if key is None and seconds is not None and len(audio) < round(seconds * sample_rate_hz):
      key = path   # A file of unknown length that was read whole.
    if cache and key is not None:
      kept[key] = audio
    return audio

  def decode(path):
    path = os.fsdecode(path.numpy())  # The name's own bytes, UTF-8 or not.
    if path in unreadable:
      return np.zeros([0], np.float32), False
    try:
      return read(path), True
    except audio_io.AudioReadError as e:
      skipped.add(path, str(e))
      if cache:
        unreadable.add(path)
      return np.zeros([0], np.float32), False
  return decode


def decoded_songs(files: List[AudioFile], sample_rate_hz: int, skipped: SkippedFiles,
                  training: bool = False, seed: int = 0,
                  max_decode_seconds: float = MAX_DECODE_SECONDS,
                  with_source: bool = False,
                  eval_crops: Optional[Tuple[int, int]] = None,
                  shuffle: bool = False, cache: bool = False) -> tf.data.Dataset:
  """Dataset of (audio [n] float32, label) per readable file, decoded in parallel;
  with `with_source`, (audio, label, source): the file's relative path as bytes.
  `eval_crops`: see `_decoder` (how eval reads files longer than `max_decode_seconds`).
  `shuffle`: the files come in a new order (from `seed`) each pass; they are shuffled
  before decoding, so only the songs being decoded are held, never the whole set.
  `cache`: what is read is decoded once and kept in memory (see `_decoder`)."""
  if not files:
    raise DataError("no audio files to read")
  decode = _decoder(sample_rate_hz, skipped, training, seed, max_decode_seconds, eval_crops,
                    cache)

  def load(path, label, source):
    audio, ok = tf.py_function(decode, [path], [tf.float32, tf.bool])
    audio.set_shape([None])
    ok.set_shape([])
    return audio, label, source, ok

  ds = tf.data.Dataset.from_tensor_slices((
      [os.fsencode(f.path) for f in files], [f.label for f in files],
      [f.relative_path.encode("utf-8", "surrogateescape") for f in files]))
  if shuffle:
    ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
  ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE)
  ds = ds.filter(lambda audio, label, source, ok: ok)
  if with_source:
    return ds.map(lambda audio, label, source, ok: (audio, label, source))
  return ds.map(lambda audio, label, source, ok: (audio, label))


def folder_dataset(files: List[AudioFile], config, split: str, skipped: SkippedFiles,
                   cache: bool = False, batch_size: Optional[int] = None,
                   repeat: Optional[bool] = None, with_source: bool = False) -> tf.data.Dataset:
  """Batched clips from song files; see the module docstring for crops and splits.

  Args:
    files: the files of this split (see `DatasetSource.files`).
    config: a `Config` (rate, clip length, clips per file, batch size, shuffle).
    split: 'train' (shuffled, random crops, repeated) or 'eval' (fixed crops, once).
    skipped: collects unreadable files.
    cache: keep decoded songs in memory after their first read (small datasets); a file
      longer than MAX_DECODE_SECONDS keeps each window of a fixed grid once read, so
      training still sees all of it (see `_decoder`).
    batch_size: defaults to config.batch_size. Eval keeps a last partial batch.
    repeat: defaults to True for train, False for eval.
    with_source: each batch also has `source`, the clips' files' relative paths (bytes),
      to tell clips of one song from clips of another.
  """
  if split not in SPLITS:
    raise DataError(f"split {split!r}; valid: {', '.join(SPLITS)}")
  training = split == "train"
  repeat = training if repeat is None else repeat
  batch_size = batch_size or config.batch_size
  # Training shuffles the file list before decoding, so memory holds the songs being
  # decoded (and, with `cache`, the songs kept), not a buffer of every song.
  ds = decoded_songs(files, config.sample_rate_hz, skipped, training, config.seed,
                     MAX_DECODE_SECONDS, with_source=True,
                     eval_crops=(config.clip_samples, config.clips_per_file),
                     shuffle=training, cache=cache)
  if repeat:
    ds = ds.repeat()
  if training:
    crop = functools.partial(random_crops, edge_fraction=config.edge_crop_fraction)
  else:
    crop = fixed_crops
  ds = ds.map(lambda audio, label, source: (crop(audio, config.clip_samples,
                                                 config.clips_per_file), label, source),
              num_parallel_calls=tf.data.AUTOTUNE)

  def clips_of_a_song(clips, label, source):
    count = [tf.shape(clips)[0]]
    per_clip = {"audio": clips, "label": tf.fill(count, label)}
    if with_source:
      per_clip["source"] = tf.fill(count, source)
    return tf.data.Dataset.from_tensor_slices(per_clip)

  ds = ds.flat_map(clips_of_a_song)
  if training:
    ds = ds.shuffle(config.shuffle_buffer_clips, seed=config.seed)
  return ds.batch(batch_size, drop_remainder=training).prefetch(tf.data.AUTOTUNE)


def make_example(audio: np.ndarray, sample_rate_hz: int, label: str = "", source_path: str = "",
                 offset_seconds: float = 0.0, split: str = "train",
                 offset_samples: Optional[int] = None) -> tf.train.Example:
  """One clip as a `tf.train.Example` in the TFRecord feature spec above; `offset_samples`
  defaults to `offset_seconds` at the rate, rounded."""
  if offset_samples is None:
    offset_samples = int(round(offset_seconds * sample_rate_hz))
  feature = tf.train.Feature
  return tf.train.Example(features=tf.train.Features(feature={
      # A list, not an array: protobuf copies a list about 1.5x faster.
      "audio": feature(float_list=tf.train.FloatList(value=np.asarray(audio, np.float32).tolist())),
      "sample_rate_hz": feature(int64_list=tf.train.Int64List(value=[int(sample_rate_hz)])),
      "label": feature(bytes_list=tf.train.BytesList(value=[label.encode("utf-8")])),
      "source_path": feature(bytes_list=tf.train.BytesList(
          value=[source_path.encode("utf-8", "surrogateescape")])),
      "offset_seconds": feature(float_list=tf.train.FloatList(value=[float(offset_seconds)])),
      "offset_samples": feature(int64_list=tf.train.Int64List(value=[int(offset_samples)])),
      "split": feature(bytes_list=tf.train.BytesList(value=[split.encode("utf-8")])),
  }))


def parse_example(serialized: tf.Tensor) -> dict:
  """Serialized Example -> dict of the spec's features, `audio` dense [n]."""
  parsed = tf.io.parse_single_example(serialized, TFRECORD_FEATURES)
  parsed["audio"] = tf.sparse.to_dense(parsed["audio"])
  return parsed


@functools.lru_cache(maxsize=None)
def _first_clip_format(path: str, mtime_nsec: int, length: int) -> Optional[Tuple[int, int]]:
  """(sample rate in Hz, samples) of the first clip in the TFRecord file `path`, or None
  when it holds none. Cached by the file's modification time and length: training, its
  start-up check and its eval pass each read the same shards, which may be thousands
  of remote files."""
  del mtime_nsec, length  # The cache key only: a rewritten file is read again.
  try:
    first = next(iter(tf.data.TFRecordDataset([path]).map(parse_example).take(1)), None)
  except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as e:
    raise DataError(f"{path}: not a TFRecord of clips as prepared by "
                    f"wave_music_vae_prepare_tfrecord ({type(e).__name__})") from e
  return None if first is None else (int(first["sample_rate_hz"]), int(tf.size(first["audio"])))


def _check_tfrecord_file(path: str, config) -> None:
  """Raises DataError, naming `path`, unless its first clip suits `config`.

  Every matched file is checked, before any training step, so a stray file or a
  shard of another rate or clip length is named at once rather than failing (or,
  for short clips, being zero-padded) somewhere inside tf.data.
  """
  stat = tf.io.gfile.stat(path)
  first = _first_clip_format(path, stat.mtime_nsec, stat.length)
  if first is None:
    return
  rate, samples = first
  if rate != config.sample_rate_hz:
    raise DataError(f"{path}: clips are at {rate} Hz, not the config rate of "
                    f"{config.sample_rate_hz} Hz; prepare them again with "
                    f"--sample_rate_hz={config.sample_rate_hz}")
  if samples < config.clip_samples:
    raise DataError(f"{path}: clips are {samples / rate:g} s, shorter than the config's "
                    f"{config.clip_seconds:g} s clips; prepare them again with "
                    f"--example_secs={config.clip_seconds:g}")


def _tfrecord_paths(file_pattern: str) -> List[str]:
  """The TFRecord files `file_pattern` matches (manifests and folders aside), sorted."""
  paths = sorted(p for p in tf.io.gfile.glob(file_pattern) if not tf.io.gfile.isdir(p)
                 and not fnmatch.fnmatch(posixpath.basename(p), MANIFEST_PATTERN))
  if Path(file_pattern).suffix.lower() in audio_io.AUDIO_EXTENSIONS:
    raise _not_a_folder(file_pattern)
  if not paths:
    not_a_folder = "" if Path(file_pattern).is_dir() else "no such folder of songs, and "
    as_prefix = ("" if Path(file_pattern).is_dir() or not tf.io.gfile.glob(file_pattern + "*")
                 else f" (did you mean the prefix '{file_pattern}*'?)")
    raise DataError(f"{file_pattern}: {not_a_folder}no TFRecord files match{as_prefix}")
  return paths


def _check_manifest_split(paths: List[str], config) -> None:
  """Raises DataError unless the manifests of the TFRecord files `paths` (written beside
  them by wave_music_vae_prepare_tfrecord) split songs as `config` does: by the same
  `split_method` and, for "hash", at the same `eval_fraction`.

  The TFRecords carry their own split; a model's config records the split its other
  readers use. Both hash the same relative paths, so they agree only at the same
  fraction: otherwise evaluating on the song folder would score tracks the model trained
  on, or evaluating on the TFRecords would. Files without a manifest are not checked; a
  manifest without `split_method` (written before it was recorded) split by hash. Local
  paths are compared absolute: the manifest lists them so, a relative pattern matches them
  relative.
  """
  def absolute(path):
    return path if paths_lib.is_remote(path) else os.path.abspath(path)

  shards = {absolute(p) for p in paths}
  eval_fraction = config.eval_fraction
  for folder in sorted({posixpath.dirname(p) for p in paths}):
    for manifest_path in sorted(tf.io.gfile.glob(posixpath.join(folder, MANIFEST_PATTERN))):
      try:
        manifest = json.loads(tf.io.gfile.GFile(manifest_path).read())
        fraction, listed = manifest["eval_split_fraction"], manifest["tfrecord_files"]
        method = manifest.get("split_method", "hash")
      except (ValueError, KeyError, TypeError, AttributeError, tf.errors.OpError):
        continue  # Not one of prepare's manifests.
      if not shards & {absolute(p) for p in listed}:
        continue
      if method != config.split_method:
        raise DataError(
            f"{manifest_path}: these TFRecords were split by split_method={method}, the config "
            f"by split_method={config.split_method}; they must agree, so that a song held out "
            f"one way is held out the other (train with --hparams=split_method={method}, or "
            f"prepare again with --split_method={config.split_method})")
      if method == "hash" and not math.isclose(fraction, eval_fraction):
        raise DataError(
            f"{manifest_path}: these TFRecords hold songs out at eval_split_fraction="
            f"{fraction:g}, the config at eval_fraction={eval_fraction:g}; they must agree, so "
            f"that a song held out one way is held out the other (train with "
            f"--hparams=eval_fraction={fraction:g}, or prepare again with "
            f"--eval_split_fraction={eval_fraction:g})")


def _tfrecords(paths: List[str]) -> tf.data.Dataset:
  """Serialized records of `paths`, interleaved, in the same order on every pass."""
  return tf.data.TFRecordDataset(paths, num_parallel_reads=tf.data.AUTOTUNE)


def tfrecord_sources(file_pattern: str, split: str) -> np.ndarray:
  """`source_path` (bytes) of each clip of `split`, in the order `tfrecord_dataset(...,
  as_eval=True)` gives them; only that feature and `split` are parsed, not the audio."""
  spec = {name: TFRECORD_FEATURES[name] for name in ("source_path", "split")}
  ds = _tfrecords(_tfrecord_paths(file_pattern)).map(
      lambda record: tf.io.parse_single_example(record, spec),
      num_parallel_calls=tf.data.AUTOTUNE)
  ds = ds.filter(lambda ex: ex["split"] == split).map(lambda ex: ex["source_path"])
  return np.array([s for batch in ds.batch(4096) for s in batch.numpy()], object)


def tfrecord_dataset(file_pattern: str, config, split: str, batch_size: Optional[int] = None,
                     repeat: Optional[bool] = None, with_source: bool = False,
                     as_eval: bool = False) -> tf.data.Dataset:
  """Batched clips from TFRecords in the feature spec above (`--examples_path=PREFIX*`);
  with `with_source`, batches also have `source` (each clip's `source_path`).

  The train split is read for training: shuffled, randomly cropped, the last partial
  batch dropped; `as_eval` reads it as the eval split is read (in order, fixed crops,
  every clip), as the evaluator reads its training clips.
  """
  if split not in SPLITS:
    raise DataError(f"split {split!r}; valid: {', '.join(SPLITS)}")
  paths = _tfrecord_paths(file_pattern)
  training = split == "train" and not as_eval
  repeat = training if repeat is None else repeat
  batch_size = batch_size or config.batch_size
  ds = _tfrecords(paths).map(parse_example, num_parallel_calls=tf.data.AUTOTUNE)
  ds = ds.filter(lambda ex: ex["split"] == split)

  for path in paths:
    _check_tfrecord_file(path, config)
  _check_manifest_split(paths, config)

  def check_rate(ex):
    tf.debugging.assert_equal(
        ex["sample_rate_hz"], tf.constant(config.sample_rate_hz, tf.int64),
        message=f"{file_pattern}: clips are not at the config rate of {config.sample_rate_hz} Hz")
    return ex

  ds = ds.map(check_rate)
  if training:
    ds = ds.shuffle(config.shuffle_buffer_clips, seed=config.seed)
  if repeat:
    ds = ds.repeat()
  crop = random_crops if training else fixed_crops
  def clip(ex):
    clip = {"audio": crop(ex["audio"], config.clip_samples, 1)[0], "label": ex["label"]}
    if with_source:
      clip["source"] = ex["source_path"]
    return clip

  ds = ds.map(clip, num_parallel_calls=tf.data.AUTOTUNE)
  return ds.batch(batch_size, drop_remainder=training).prefetch(tf.data.AUTOTUNE)


def label_interleaved(files: List[AudioFile]) -> List[AudioFile]:
  """`files` reordered round-robin over their labels (each label's files in their order), so
  that the first clips of an eval stream, which a pass of N batches stops at, come from
  every label rather than from the alphabetically first."""
  by_label = {}
  for file in files:
    by_label.setdefault(file.label, []).append(file)
  rounds = itertools.zip_longest(*by_label.values())
  return [file for round_ in rounds for file in round_ if file is not None]


@dataclasses.dataclass
class DatasetSource:
  """Where clips come from: a folder of songs (with layout) or TFRecords."""

  examples_path: str
  layout: str
  skipped: SkippedFiles = dataclasses.field(default_factory=SkippedFiles)
  # (split_method, eval_fraction) -> (listed files, their splits): listed and split once.
  _split_cache: dict = dataclasses.field(default_factory=dict, repr=False)

  @property
  def is_tfrecord(self) -> bool:
    """TFRecords are named by a file or a pattern; a folder holds songs, whatever the layout
    (a model trained on TFRecords, whose config says `tfrecord`, is evaluated on songs)."""
    return not Path(self.examples_path).is_dir()

  def files(self, split: str, config) -> List[AudioFile]:
    """The songs of `split` ('train' or 'eval') as `config` splits them (`file_splits`)."""
    key = (config.split_method, config.eval_fraction)
    if key not in self._split_cache:
      layout = "folder" if self.layout == "tfrecord" else self.layout
      files = list_audio_files(self.examples_path, layout)
      if not files:
        records = sorted(p.name for p in Path(self.examples_path).iterdir()
                         if p.is_file() and ("tfrecord" in p.name or "-of-" in p.name))
        prefix = re.sub(r"-\d+-of-\d+$", "", records[0]) if records else ""
        hint = (f"; it holds TFRecord files: pass them as a pattern, e.g. "
                f"--examples_path='{Path(self.examples_path) / prefix}*'" if records else "")
        raise DataError(f"{self.examples_path}: no audio files found for layout "
                        f"{layout!r}{hint}")
      self._split_cache[key] = files, file_splits(files, layout, *key, [self.examples_path])
    files, splits = self._split_cache[key]
    return [f for f, s in zip(files, splits) if s == split]

  def dataset(self, config, split: str, cache: bool = False, batch_size: Optional[int] = None,
              repeat: Optional[bool] = None, with_source: bool = False) -> tf.data.Dataset:
    if self.is_tfrecord:
      return tfrecord_dataset(self.examples_path, config, split, batch_size, repeat, with_source)
    files = self.files(split, config)
    if not files:
      raise DataError(f"{self.examples_path}: the {split} split has no files "
                      f"({split_setting(config)})")
    if split == "eval":
      files = label_interleaved(files)
    return folder_dataset(files, config, split, self.skipped, cache, batch_size, repeat,
                          with_source)
