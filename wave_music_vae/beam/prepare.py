"""Apache Beam pipeline: audio files -> sharded TFRecords of clips and a JSON manifest.

The only module of wave_music_vae that imports apache_beam. The same pipeline runs
on the DirectRunner (the default), Dataflow, Flink or Spark, chosen by the standard
Beam pipeline options. Stages:

  input_files      (path, relative_path, label, split) per song, listed and split on the
                   launcher (`data.file_splits`, as the training readers split them; songs in
                   neither split left out); paths as bytes, so names that are not UTF-8
                   pass Beam's string coder
  reshuffle_files  spreads songs over workers (a Create is a single bundle)
  read_and_cut     `ReadAndCutDoFn`: decode, mix down and resample (`audio_io.read_audio`),
                   cut clips, one serialized `tf.train.Example` per clip in the feature
                   spec of `data.py` (`data.make_example`), with its song's split
  write_tfrecords  PREFIX-00000-of-000NN ... (after `reshuffle_clips`, which spreads clips
                   over workers; on the DirectRunner a song's clips stay together)
  write_manifest   manifest-<PREFIX's basename>.json beside the shards: counts, seconds,
                   labels, the shards, and every skipped file with its reason. It is
                   named so that `--examples_path=PREFIX*` never matches it.

The pipeline writes into a staging folder (`.prepare-<PREFIX's basename>-<id>/`) beside the
outputs; only when it has finished are the shards moved to PREFIX-... and the manifest
written, then the folder is removed, however the run ends. So an interrupted run leaves an
earlier set of the same prefix whole, and no other set's files are touched.

Clips are windows of `example_secs` starting every `hop_secs` that fit whole in the
song; a song shorter than one clip gives one clip zero-padded at the end, as the
training readers pad. `source_path` is the song's path relative to the root of its
input (a folder, or the part of a file pattern before its first wildcard), so a
folder prepared here splits exactly as `wave_music_vae_train` splits it, by a hash of
that path or (`split_method="official"`) by the dataset's own split.

An unreadable file never fails the pipeline: it is counted in the Beam metrics of
namespace `wave_music_vae.prepare` and listed in the manifest. Remote inputs
(gs://, s3://, hdfs://) are copied to a local temporary file for the decoders.
"""

import contextlib
import dataclasses
import json
import logging
import math
import os
import posixpath
import re
import shutil
import tempfile
import uuid
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.options.pipeline_options import StandardOptions
import numpy as np

from wave_music_vae import audio_io
from wave_music_vae import config as config_lib
from wave_music_vae import data
from wave_music_vae import output_locations

METRICS_NAMESPACE = "wave_music_vae.prepare"
INPUT_LAYOUTS = tuple(data.LISTERS)
_CLIPS, _SONGS, _SKIPPED = "clips", "songs", "skipped"


_LOGGER = logging.getLogger(__name__)


class PrepareError(ValueError):
  """Inputs or outputs that cannot be used (nothing matches, outputs exist, bad settings)."""


@dataclasses.dataclass
class PrepareResult:
  """What a run wrote: the manifest's content, and the pipeline's Beam counters."""

  manifest_path: str
  manifest: dict
  counters: Dict[str, int]


def manifest_path(output_tfrecord_path: str) -> str:
  """The manifest beside the shards: DIR/manifest-BASENAME.json for DIR/BASENAME."""
  directory, basename = posixpath.split(output_tfrecord_path)
  return posixpath.join(directory, data.MANIFEST_PATTERN.replace("*", basename))


def cut_clips(audio: np.ndarray, clip_samples: int,
              hop_samples: int) -> Tuple[np.ndarray, np.ndarray]:
  """Song float32 [n] -> (starts [k] in samples, clips [k, clip_samples]).

  Windows start every `hop_samples` and fit whole; a song shorter than one clip
  gives one clip, zero-padded at the end.
  """
  if len(audio) < clip_samples:
    audio = np.pad(audio, (0, clip_samples - len(audio)))
  clips = np.lib.stride_tricks.sliding_window_view(audio, clip_samples)[::hop_samples]
  return np.arange(len(clips)) * hop_samples, clips


def _pattern_root(pattern: str) -> str:
  """The folder before a pattern's first wildcard: what its files' paths are relative to."""
  fixed = re.match(r"[^[*?]*", pattern).group(0)
  return fixed.rstrip("/") if fixed.endswith("/") else posixpath.dirname(fixed)


def _input_root(pattern: str) -> str:
  """The folder whose songs an input names: a local folder itself, or a pattern's root."""
  if FileSystems.get_scheme(pattern) is None:
    pattern = os.path.abspath(pattern)
    if os.path.isdir(pattern):
      return pattern
  return _pattern_root(pattern)


def list_input_files(filepatterns: Sequence[str], layout: str = "folder") -> List[data.AudioFile]:
  """Audio files named by file patterns or folders, each with its relative path and label.

  A local folder is listed as the training reader lists it (`data.list_audio_files`
  with `layout`). A pattern (local or remote; `*` stays in one folder, `**` crosses
  folders) keeps the files with audio extensions, hidden ones aside as a folder's are;
  their label is their first sub-folder below the pattern's root, as in the folder
  layout, or with layout `gtzan` their genre folder, the folder holding them.

  Raises:
    PrepareError: a folder or pattern names no audio file.
  """
  files = {}
  for pattern in filepatterns:
    is_local = FileSystems.get_scheme(pattern) is None
    if is_local:
      pattern = os.path.abspath(pattern)
    if is_local and os.path.isdir(pattern):
      listed = data.list_audio_files(pattern, layout)
    else:
      root = _pattern_root(pattern)
      listed = []
      for metadata in FileSystems.match([pattern])[0].metadata_list:
        if posixpath.splitext(metadata.path)[1].lower() not in audio_io.AUDIO_EXTENSIONS:
          continue
        relative = metadata.path[len(root):].lstrip("/")
        parts = relative.split("/")
        if any(data.is_hidden(part) for part in parts):
          continue
        label = data.printable(parts[0]) if len(parts) > 1 else ""
        # Split (and, for GTZAN, label) as the folder reader does, whatever the root.
        if layout == "fma":
          relative = data.fma_relative_path(metadata.path, relative)
        elif layout == "gtzan" and len(parts) > 1:
          relative, label = "/".join(parts[-2:]), data.printable(parts[-2])
        listed.append(data.AudioFile(metadata.path, relative, label))
    if not listed:
      raise PrepareError(f"{pattern}: no audio files found")
    for audio_file in listed:
      files.setdefault(audio_file.path, audio_file)
  return sorted(files.values(), key=lambda f: f.path)


@contextlib.contextmanager
def _local_file(path: str):
  """`path` itself when local, else a temporary local copy (the decoders need a file)."""
  if FileSystems.get_scheme(path) is None:
    yield path
    return
  with tempfile.NamedTemporaryFile(suffix=posixpath.splitext(path)[1]) as local:
    try:
      with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as remote:
        shutil.copyfileobj(remote, local)
    except OSError as e:  # BeamIOError is one.
      raise audio_io.AudioReadError(path, f"cannot be copied to the worker ({e})") from None
    local.flush()
    yield local.name


class ReadAndCutDoFn(beam.DoFn):
  """(path, relative_path, label, split) of a song -> serialized Examples, one per clip; a
  song over `max_decode_seconds` is read a window at a time (`_pieces`).

  Outputs: the main output holds the clips; `songs` one record per read song
  (relative path, label, split, seconds, clips); `skipped` one (path, reason) per
  unreadable file. Built from plain values only, so any runner can pickle it.
  """

  def __init__(self, sample_rate_hz: int, example_secs: float, hop_secs: float,
               max_decode_seconds: float = data.MAX_DECODE_SECONDS):
    super().__init__()
    self.sample_rate_hz = sample_rate_hz
    self.example_secs = example_secs
    self.hop_secs = hop_secs
    self.max_decode_seconds = max_decode_seconds
    self.files_read = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "files_read")
    self.files_skipped = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "files_skipped")
    self.clips_written = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "clips_written")

  def _pieces(self, path: str, clip_samples: int, hop_samples: int):
    """(first sample, audio float32 [n]) pieces of the song at `path` that hold each of its
    clips whole, once: the whole song when it is at most `max_decode_seconds` long (or no
    header gives its length), else windows of about that length, each starting at a
    multiple of the hop and reaching one clip into the next, so that a 3-hour mix costs a
    worker no more memory than a 10-minute song. A window after the first that fails to
    read (a header that overstates the length) ends the song there.

    Raises:
      audio_io.AudioReadError: the song, or its first window, cannot be read.
    """
    rate = self.sample_rate_hz
    try:
      total_seconds = audio_io.duration_seconds(path)
    except audio_io.AudioReadError:
      total_seconds = None   # read_audio says why, if the file is not audio at all.
    if total_seconds is None or total_seconds <= self.max_decode_seconds:
      yield 0, audio_io.read_audio(path, rate)
      return
    step = max(1, int(self.max_decode_seconds * rate) // hop_samples) * hop_samples
    span = step - hop_samples + clip_samples   # the clips starting in [first, first + step)
    for first in range(0, int(round(total_seconds * rate)), step):
      try:
        piece = audio_io.read_audio(path, rate, first / rate, span / rate)
      except audio_io.AudioReadError as e:
        if not first:
          raise
        _LOGGER.warning("%s: read up to %.1f s of its %.1f s (%s)", data.printable(path),
                        first / rate, total_seconds, e.cause)
        return
      if first and len(piece) < clip_samples:
        return   # Nothing whole left: a first piece that short is a short song, padded.
      yield first, piece
      if len(piece) < span:
        return

  def process(self, song: Tuple[bytes, bytes, str, str]):
    # Paths travel as bytes: Beam's string coder refuses names that are not UTF-8.
    path, relative_path, (label, split) = os.fsdecode(song[0]), os.fsdecode(song[1]), song[2:]
    rate = self.sample_rate_hz
    clip_samples = int(round(self.example_secs * rate))
    hop_samples = int(round(self.hop_secs * rate))
    num_clips, song_samples = 0, 0
    try:
      with _local_file(path) as local_path:
        for first, piece in self._pieces(local_path, clip_samples, hop_samples):
          starts, clips = cut_clips(piece, clip_samples, hop_samples)
          for start, clip in zip(first + starts, clips):
            yield data.make_example(clip, rate, label, relative_path, start / rate, split,
                                    offset_samples=int(start)).SerializeToString()
          num_clips += len(clips)
          song_samples = first + len(piece)
    except audio_io.AudioReadError as e:   # Only before any clip: see `_pieces`.
      _LOGGER.warning("skipped unreadable audio %s: %s", data.printable(path), e.cause)
      self.files_skipped.inc()
      yield beam.pvalue.TaggedOutput(_SKIPPED, (data.printable(path), data.printable(e.cause)))
      return
    self.files_read.inc()
    self.clips_written.inc(num_clips)
    yield beam.pvalue.TaggedOutput(_SONGS, {
        "relative_path": data.printable(relative_path), "label": label, "split": split,
        "seconds": song_samples / rate, "clips": num_clips})


class SongTotalsFn(beam.CombineFn):
  """Song records -> per-split files, clips and seconds, and clips per label and split."""

  def create_accumulator(self):
    return {"splits": {split: {"files": 0, "clips": 0, "audio_seconds": 0.0}
                       for split in data.SPLITS},
            "labels": {}}

  def add_input(self, accumulator, song):
    totals = accumulator["splits"][song["split"]]
    totals["files"] += 1
    totals["clips"] += song["clips"]
    totals["audio_seconds"] += song["seconds"]
    label = accumulator["labels"].setdefault(song["label"], {split: 0 for split in data.SPLITS})
    label[song["split"]] += song["clips"]
    return accumulator

  def merge_accumulators(self, accumulators):
    merged = self.create_accumulator()
    for accumulator in accumulators:
      for split, totals in accumulator["splits"].items():
        for key, value in totals.items():
          merged["splits"][split][key] += value
      for name, clips in accumulator["labels"].items():
        label = merged["labels"].setdefault(name, {split: 0 for split in data.SPLITS})
        for split, count in clips.items():
          label[split] += count
    return merged

  def extract_output(self, accumulator):
    return {"splits": accumulator["splits"], "labels": dict(sorted(accumulator["labels"].items()))}


def _write_manifest(totals: dict, skipped: List[Tuple[str, str]], tfrecord_files: List[str],
                    path: str, settings: dict) -> str:
  """Writes the manifest JSON to a temporary name, then renames it into place."""
  example_secs = settings["example_secs"]
  for split_totals in totals["splits"].values():
    split_totals["clip_seconds"] = split_totals["clips"] * example_secs
  manifest = {
      **settings,
      "tfrecord_files": sorted(tfrecord_files),
      "files_read": sum(t["files"] for t in totals["splits"].values()),
      "files_skipped": len(skipped),
      "clips": sum(t["clips"] for t in totals["splits"].values()),
      **totals,
      "skipped_files": [{"path": p, "reason": reason} for p, reason in sorted(skipped)],
  }
  return _write_json(manifest, path)


def _write_json(content: dict, path: str) -> str:
  """Writes `content` to a temporary name beside `path`, then renames it into place."""
  directory, basename = posixpath.split(path)
  partial = posixpath.join(directory, f".{basename}.partial")
  with FileSystems.create(partial, mime_type="application/json") as f:
    f.write(json.dumps(content, indent=2).encode("utf-8"))
  FileSystems.rename([partial], [path])
  return path


def _delete_quietly(paths: List[str]) -> None:
  """Deletes files and folders, ignoring those already gone."""
  for path in paths:
    try:
      FileSystems.delete([path])
    except Exception:  # pylint: disable=broad-except  # Already gone, or not ours to remove.
      pass


def _delete_folder(folder: str) -> None:
  """Deletes `folder` and everything below it, locally or in an object store (where a
  folder is only a name prefix, and `*` in a pattern does not cross '/', so every object
  below it is matched with '**' and deleted one by one)."""
  if FileSystems.get_scheme(folder) is None:
    _delete_quietly([folder])
  else:
    _delete_quietly([m.path for m in FileSystems.match([folder + "/**"])[0].metadata_list])


def _existing_outputs(output_tfrecord_path: str) -> List[str]:
  """This prefix's shards (PREFIX-NNNNN-of-NNNNN exactly: not those of a prefix that merely
  starts with it, such as PREFIX-v2) and its manifest."""
  shard_name = re.compile(re.escape(posixpath.basename(output_tfrecord_path))
                          + r"-\d{5}-of-\d{5}$")
  shards = FileSystems.match([f"{output_tfrecord_path}-*-of-*"])[0].metadata_list
  outputs = [m.path for m in shards if shard_name.match(posixpath.basename(m.path))]
  if FileSystems.exists(manifest_path(output_tfrecord_path)):
    outputs.append(manifest_path(output_tfrecord_path))
  return sorted(outputs)


def _check_settings(example_secs: float, hop_secs: float, num_shards: int,
                    eval_split_fraction: float, sample_rate_hz: int, split_method: str) -> None:
  problems = []
  if sample_rate_hz <= 0:
    problems.append(f"sample_rate_hz={sample_rate_hz} (must be positive)")
  for name, seconds in (("example_secs", example_secs), ("hop_secs", hop_secs)):
    if not math.isfinite(seconds):
      problems.append(f"{name}={seconds} (must be a finite number of seconds)")
    elif seconds <= 0 or (sample_rate_hz > 0 and round(seconds * sample_rate_hz) < 1):
      problems.append(f"{name}={seconds} (must hold at least one sample)")
  if num_shards < 0:
    problems.append(f"num_shards={num_shards} (0 lets the runner choose; must not be negative)")
  if not 0.0 <= eval_split_fraction < 1.0:
    problems.append(f"eval_split_fraction={eval_split_fraction} (must be in [0, 1))")
  if split_method not in config_lib.SPLIT_METHODS:
    problems.append(f"split_method={split_method!r} (valid: "
                    f"{', '.join(config_lib.SPLIT_METHODS)})")
  if problems:
    raise PrepareError("invalid " + "; ".join(problems))


def pipeline_options_from(args: Sequence[str]) -> PipelineOptions:
  """Beam's options from command-line style `args` (DirectRunner unless `--runner`).

  Raises:
    PrepareError: an option Beam does not know.
  """
  options = PipelineOptions(list(args))
  standard = options.view_as(StandardOptions)
  standard.runner = standard.runner or "DirectRunner"
  beam_logger = logging.getLogger(PipelineOptions.__module__)
  level = beam_logger.level
  beam_logger.setLevel(logging.ERROR)  # Both calls warn about the unknown options.
  try:
    unknown = (set(options.get_all_options(retain_unknown_options=True))
               - set(options.get_all_options()))
  finally:
    beam_logger.setLevel(level)
  if unknown:
    raise PrepareError(f"unknown option(s) {', '.join('--' + o for o in sorted(unknown))}: "
                       "neither a flag of this tool nor an Apache Beam pipeline option")
  return options


def prepare_tfrecord(input_audio_filepatterns: Sequence[str], output_tfrecord_path: str,
                     example_secs: float = 4.0, hop_secs: Optional[float] = None,
                     num_shards: int = 0, eval_split_fraction: float = 0.1,
                     sample_rate_hz: int = 22050, layout: str = "folder",
                     pipeline_options: Iterable[str] = (), overwrite: bool = False,
                     split_method: str = "hash") -> PrepareResult:
  """Runs the pipeline (see the module docstring) and waits for it to finish.

  Args:
    input_audio_filepatterns: file patterns or folders of songs (see `list_input_files`).
    output_tfrecord_path: prefix of the shards, PREFIX-00000-of-000NN (local or remote).
    example_secs: clip length (seconds); match the config's `clip_seconds`.
    hop_secs: seconds between clip starts; default `example_secs` (no overlap).
    num_shards: number of TFRecord files; 0 lets the runner choose.
    eval_split_fraction: share of *files* whose clips are marked 'eval' (split_method hash).
    sample_rate_hz: rate of the stored clips (Hz); match the config's.
    layout: how folders among the inputs are listed: folder, gtzan or fma.
    pipeline_options: Beam command-line options (`--runner=DataflowRunner`, ...).
    overwrite: replace existing shards and manifest of this prefix (stale shards of a
      run with more shards are deleted too, once the new set is complete, so an
      interrupted run keeps the old one); otherwise existing outputs are an error.
    split_method: "hash" (at `eval_split_fraction`) or "official" (the gtzan or fma
      layout's own split; songs in neither split are not written): the config's
      `split_method`, which training checks against the manifest's.

  Returns:
    The manifest's path and content, and the Beam counters of the run.

  Raises:
    PrepareError: bad settings or pipeline options, inputs that name no audio, or
      outputs that exist.
    data.DataError: "official" for a layout without an official split, or FMA inputs
      without their tracks.csv.
    OutputPathError: a local output folder that cannot be made or written in.
  """
  hop_secs = example_secs if hop_secs is None else hop_secs
  _check_settings(example_secs, hop_secs, num_shards, eval_split_fraction, sample_rate_hz,
                  split_method)
  options = pipeline_options_from(pipeline_options)
  if layout not in INPUT_LAYOUTS:
    raise PrepareError(f"layout={layout!r}; valid: {', '.join(INPUT_LAYOUTS)}")
  is_local = FileSystems.get_scheme(output_tfrecord_path) is None
  if output_tfrecord_path.endswith("/") or (is_local and os.path.isdir(output_tfrecord_path)):
    folder = output_tfrecord_path.rstrip("/")
    raise PrepareError(f"{output_tfrecord_path}: a folder, not a prefix of file names; give a "
                       f"prefix inside it, e.g. --output_tfrecord_path={folder}/clips")
  if is_local:
    output_tfrecord_path = os.path.abspath(output_tfrecord_path)
    output_locations.check_file(output_tfrecord_path)
  existing = _existing_outputs(output_tfrecord_path)
  if existing and not overwrite:
    unfinished = ("; no manifest, so an earlier run was interrupted"
                  if manifest_path(output_tfrecord_path) not in existing else "")
    raise PrepareError(f"{existing[0]}: already exists ({len(existing)} output(s) of this "
                       f"prefix{unfinished}); not overwritten (pass --overwrite to replace them)")
  files = list_input_files(input_audio_filepatterns, layout)
  splits = data.file_splits(files, layout, split_method, eval_split_fraction,
                            [_input_root(pattern) for pattern in input_audio_filepatterns])
  songs = [(os.fsencode(f.path), os.fsencode(f.relative_path), f.label, split)
           for f, split in zip(files, splits) if split is not None]
  if not songs:
    raise PrepareError(f"{input_audio_filepatterns[0]}: none of the {len(files)} file(s) listed "
                       f"is in the train or eval split (split_method={split_method}): nothing "
                       "to prepare")
  settings = {"output_tfrecord_path": output_tfrecord_path,
              "input_audio_filepatterns": list(input_audio_filepatterns),
              "files_listed": len(files), "files_in_no_split": len(files) - len(songs),
              "sample_rate_hz": sample_rate_hz, "example_secs": example_secs,
              "hop_secs": hop_secs, "split_method": split_method,
              "eval_split_fraction": eval_split_fraction}
  # The pipeline writes into a staging folder of its own beside the outputs (Beam's
  # beam-temp-* folder too, and Beam's clean-up of PREFIX-*-of-N names, which would take
  # another set's shards): only a complete set is then moved into place (`_publish`).
  directory, basename = posixpath.split(output_tfrecord_path)
  staging = posixpath.join(directory, f".prepare-{basename}-{uuid.uuid4().hex[:8]}")
  staged_prefix = posixpath.join(staging, basename)
  manifest = manifest_path(staged_prefix)

  pipeline = beam.Pipeline(options=options)
  outputs = (
      pipeline
      | "input_files" >> beam.Create(songs)
      | "reshuffle_files" >> beam.Reshuffle()
      | "read_and_cut" >> beam.ParDo(ReadAndCutDoFn(
          sample_rate_hz, example_secs, hop_secs)).with_outputs(_SONGS, _SKIPPED, main=_CLIPS))
  tfrecord_files = (
      outputs[_CLIPS]
      | "reshuffle_clips" >> beam.Reshuffle()
      | "write_tfrecords" >> beam.io.WriteToTFRecord(staged_prefix, num_shards=num_shards))
  _ = (
      outputs[_SONGS]
      | "song_totals" >> beam.CombineGlobally(SongTotalsFn())
      | "write_manifest" >> beam.Map(
          _write_manifest, skipped=beam.pvalue.AsList(outputs[_SKIPPED]),
          tfrecord_files=beam.pvalue.AsList(tfrecord_files), path=manifest,
          settings=settings))
  try:
    try:
      result = pipeline.run()
      result.wait_until_finish()
    except Exception as e:  # pylint: disable=broad-except
      interrupt = _wrapped_interrupt(e)
      if interrupt is None:
        raise
      raise interrupt from None
    published = _publish(staged_prefix, output_tfrecord_path)
  finally:  # Done, interrupted or failed: the staging folder goes; old outputs stay unless
    _delete_folder(staging)   # the new set was complete.
  counters = {}
  for counter in result.metrics().query(
      MetricsFilter().with_namespace(METRICS_NAMESPACE))[result.metrics().COUNTERS]:
    counters[counter.key.metric.name] = counters.get(counter.key.metric.name, 0) + counter.result
  return PrepareResult(manifest_path(output_tfrecord_path), published, counters)


def _wrapped_interrupt(error: BaseException) -> Optional[BaseException]:
  """The KeyboardInterrupt (Ctrl-C, or a SIGTERM raised as one) that Beam wrapped in
  `error` when it arrived inside a pipeline step, or None: Beam re-raises it as a
  RuntimeError('KeyboardInterrupt [while running ...]'), which callers would report as a
  failure with a traceback rather than as the interruption it is."""
  seen = set()
  while error is not None and id(error) not in seen:
    if isinstance(error, KeyboardInterrupt):
      return error
    seen.add(id(error))
    error = error.__cause__ or error.__context__
  return None


def _publish(staged_prefix: str, output_tfrecord_path: str) -> dict:
  """Moves a complete staged set into place; returns its manifest, as written there.

  The old manifest goes first and the new one comes last, so that a set is never listed
  by a manifest it does not match: an interruption in between leaves shards without a
  manifest, which the next run names ("an earlier run was interrupted"). New shards
  replace old ones of the same name; old shards beyond the new count go.
  """
  with FileSystems.open(manifest_path(staged_prefix),
                        compression_type=CompressionTypes.UNCOMPRESSED) as f:
    manifest = json.loads(f.read().decode("utf-8"))
  directory = posixpath.dirname(output_tfrecord_path)
  staged = manifest["tfrecord_files"]
  final = [posixpath.join(directory, posixpath.basename(path)) for path in staged]
  old = _existing_outputs(output_tfrecord_path)
  _delete_quietly([manifest_path(output_tfrecord_path)])
  if staged:
    FileSystems.rename(staged, final)
  _delete_quietly(sorted(set(old) - set(final) - {manifest_path(output_tfrecord_path)}))
  manifest.update(tfrecord_files=final, output_tfrecord_path=output_tfrecord_path)
  _write_json(manifest, manifest_path(output_tfrecord_path))
  return manifest
