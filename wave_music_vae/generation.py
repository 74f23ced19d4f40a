"""Whole songs in, whole songs out: interpolate, sample, reconstruct and tweak, as audio.

The model hears one clip (`config.clip_seconds`) at a time, so a song is cut into
overlapping clip-long windows (`WindowGrid`), each window is encoded to its encoder
mean mu ([z_size]), the latent operation is applied window by window, every window
is decoded to audio (log-mel, then Griffin-Lim), and the decoded windows are
stitched back with equal-power crossfades over their overlaps (`stitch_windows`).
Windows start every `clip - crossfade` samples; the last one ends exactly at the
song's end, and a song shorter than one clip is one zero-padded window whose output
is cut back to the song's length. Outputs have the input's length in samples.

Modes (each returns a `Generated`):
  interpolate   window i of song 1 is paired with window i of song 2; `num_outputs`
                codes along the slerp between their means, endpoints included (as
                MusicVAE), so output 0 is song 1's reconstruction and the last output
                song 2's.
  sample        `num_outputs` clips of `clip_seconds` from z ~ N(0, temperature^2 I).
  reconstruct   encode then decode one song: the honest view of what the model hears.
  tweak         a `LatentEdit` applied to every window's mu of one song.
`refine_steps` > 0 (interpolate, reconstruct, tweak) refines each window's mu by that
many gradient steps on the decoder's error before the latent operation
(`refinement`): closer reconstructions, at the cost of a decoder pass, forward and
backward, per step and window.

Songs of different lengths in `interpolate`: the outputs are cut to the shorter
song. Every window of every output then has a real partner in both songs, and the
endpoints stay what they promise, the reconstructions of the inputs (cut to that
length). Reusing the shorter song's windows cyclically would instead make the
"reconstruction" of the shorter song a loop of it that was never in the input, and
the seam where the loop restarts would be heard in every output.

Streaming: input windows are encoded a batch at a time and only their latents are
kept ([num_windows, z_size], about 10 KB per minute of audio at z_size 128); decoding runs one batch
of windows at a time and adds its audio into the output songs before the next batch,
so Griffin-Lim's spectrograms exist for one batch only. What stays in memory is the
input song(s) and the outputs: float32 [num_outputs, samples], 5 outputs of a
10-minute song at 22050 Hz are 265 MB.

Outputs louder than audio_io.PEAK_LIMIT are scaled down to it rather than clipped. Griffin-Lim
starts every clip from the same seeded phases (`spectral.griffin_lim`), so a code
decodes to the same samples whichever batch it is decoded in.

Outputs are named as in Magenta's `music_vae_generate`:
`<mode>_<YYYY-mm-dd>_<HHMMSS>-<i>-of-<n>.<format>`, i counting from 000; a run that
finds its names taken by another run started in the same second into the same folder
writes `<mode>_<YYYY-mm-dd>_<HHMMSS>-2-...` instead (`claimed_outputs`).
"""

import contextlib
import dataclasses
import itertools
import math
import os
import re
import time
from pathlib import Path
from typing import Collection, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import keras
import numpy as np

from wave_music_vae import audio_io
from wave_music_vae import latent
from wave_music_vae import locks
from wave_music_vae import output_locations
from wave_music_vae import paths as paths_lib
from wave_music_vae.inference import Backend

MODES = ("interpolate", "sample", "reconstruct", "tweak")
OUTPUT_FORMATS = ("wav", "flac", "mp3")
# `claimed_outputs`' claim files, `.<mode>_<date>_<time>[-<n>].claim`: those of any mode.
CLAIM_PATTERN = re.compile(rf"\.(?:{'|'.join(MODES)})_\d{{4}}-\d\d-\d\d_\d{{6}}(?:-\d+)?\.claim")
CROSSFADE_FRACTION = 0.25    # Crossfade length as a share of the clip.
BATCH_CLIPS = 16             # Clips per encode / decode call.


class GenerationError(ValueError):
  """A request that cannot be carried out (bad edit, existing output); says which and why."""


@dataclasses.dataclass(frozen=True)
class WindowGrid:
  """Where the clip-long windows of a song start, and how neighbours crossfade.

  Attributes:
    num_samples: the song's length (samples).
    clip_samples: the length of one window (the model's clip, samples).
    crossfade_samples: the length of each crossfade (samples), at most half a clip.
    starts: first sample of each window: 0, hop, 2 hop, ... with
      hop = clip_samples - crossfade_samples, and a last window that ends exactly
      at the song's end. A song no longer than one clip has the single start 0.
  """

  num_samples: int
  clip_samples: int
  crossfade_samples: int
  starts: Tuple[int, ...]

  @classmethod
  def for_song(cls, num_samples: int, clip_samples: int,
               crossfade_samples: Optional[int] = None) -> "WindowGrid":
    if crossfade_samples is None:
      crossfade_samples = int(round(CROSSFADE_FRACTION * clip_samples))
    if num_samples <= 0:
      raise GenerationError(f"a song needs at least one sample (got {num_samples})")
    if not 0 <= crossfade_samples <= clip_samples // 2:
      raise GenerationError(f"crossfade of {crossfade_samples} samples: must be in "
                            f"[0, {clip_samples // 2}] (half a clip)")
    hop = clip_samples - crossfade_samples
    if num_samples <= clip_samples:
      starts = [0]
    else:
      starts = list(range(0, num_samples - clip_samples, hop)) + [num_samples - clip_samples]
    return cls(num_samples, clip_samples, crossfade_samples, tuple(starts))

  @property
  def num_windows(self) -> int:
    return len(self.starts)

  def windows(self, waveform: np.ndarray, indices: Sequence[int]) -> np.ndarray:
    """Song float32 [>= num_samples] -> windows [len(indices), clip_samples], zero-padded."""
    waveform = np.asarray(waveform, np.float32)[:self.num_samples]
    padded = np.pad(waveform, (0, max(self.clip_samples - self.num_samples, 0)))
    return np.stack([padded[self.starts[i]:self.starts[i] + self.clip_samples] for i in indices])

  def fade_in_start(self, index: int) -> int:
    """Song sample where window `index` starts fading in: where its predecessor fades out."""
    if index == 0:
      return 0
    return self.starts[index - 1] + self.clip_samples - self.crossfade_samples

  def weights(self, index: int) -> np.ndarray:
    """Gain of window `index` over its own samples, float32 [clip_samples].

    0 before its fade-in, a quarter sine up over `crossfade_samples`, 1, then a quarter
    cosine down over the last `crossfade_samples` (none at the song's two ends).
    Where two windows overlap their gains g1, g2 satisfy g1^2 + g2^2 = 1: an
    equal-power crossfade, as Griffin-Lim gives each window its own phases, so
    neighbouring windows add like uncorrelated signals.
    """
    gains = np.ones(self.clip_samples, np.float32)
    ramp = np.sin(0.5 * np.pi * (np.arange(self.crossfade_samples) + 0.5)
                  / max(self.crossfade_samples, 1)).astype(np.float32)
    if index > 0:
      local = self.fade_in_start(index) - self.starts[index]
      gains[:local] = 0.0
      gains[local:local + self.crossfade_samples] = ramp
    if index < self.num_windows - 1 and self.crossfade_samples:
      gains[-self.crossfade_samples:] = ramp[::-1]
    return gains


def stitch_windows(grid: WindowGrid, decoded_batches: Iterable[Tuple[Sequence[int], np.ndarray]],
                   num_songs: int) -> np.ndarray:
  """Overlap-adds decoded windows into whole songs.

  Args:
    grid: the windows' positions.
    decoded_batches: pairs (window indices [b], audio float32 [b, num_songs, clip_samples]),
      consumed one at a time, so only one batch of windows is held.
    num_songs: outputs per window.

  Returns:
    float32 [num_songs, grid.num_samples].
  """
  songs = np.zeros([num_songs, grid.num_samples], np.float32)
  for indices, audio in decoded_batches:
    for index, window_audio in zip(indices, audio):
      start = grid.starts[index]
      stop = min(start + grid.clip_samples, grid.num_samples)
      songs[:, start:stop] += (window_audio * grid.weights(index))[:, :stop - start]
  return songs


def _batches(count: int, size: int) -> List[List[int]]:
  return [list(range(i, min(i + size, count))) for i in range(0, count, size)]


class _Progress:
  """A `keras.utils.Progbar` over clips encoded and decoded, or nothing."""

  def __init__(self, total_clips: int, enabled: bool):
    self.bar = keras.utils.Progbar(total_clips, unit_name="clip") if enabled else None
    self.done = 0

  def advance(self, clips: int) -> None:
    self.done += clips
    if self.bar is not None:
      self.bar.update(self.done)


def encode_song(backend: Backend, waveform: np.ndarray, grid: WindowGrid,
                bar: Optional[_Progress] = None, refine_steps: int = 0) -> np.ndarray:
  """Every window's code: song float32 [samples] -> [num_windows, z_size].

  The encoder mean mu, or with `refine_steps` > 0 mu refined by that many gradient
  steps on the decoder's error (`refinement`).
  """
  means = []
  for indices in _batches(grid.num_windows, BATCH_CLIPS):
    windows = grid.windows(waveform, indices)
    if refine_steps > 0:
      mu = backend.encode_refined(windows, refine_steps)
    else:
      _, mu, _ = backend.encode(windows)
    means.append(mu)
    if bar:
      bar.advance(len(indices))
  return np.concatenate(means).astype(np.float32)


def decode_song(backend: Backend, latents: np.ndarray, grid: WindowGrid,
                griffin_lim_iters: Optional[int] = None,
                bar: Optional[_Progress] = None) -> np.ndarray:
  """latents [num_windows, num_songs, z_size] -> stitched songs float32 [num_songs, samples].

  At most BATCH_CLIPS clips are decoded per call, however many songs there are (a
  256-output interpolation would otherwise hold 256 clips' Griffin-Lim state at once).
  """
  num_windows, num_songs, z_size = latents.shape
  windows_per_batch = max(1, BATCH_CLIPS // num_songs)

  def decoded():
    for indices in _batches(num_windows, windows_per_batch):
      codes = latents[indices].reshape(-1, z_size)
      audio = []
      for rows in _batches(len(codes), BATCH_CLIPS):
        audio.append(np.asarray(backend.decode(codes[rows], griffin_lim_iters)[0]))
        if bar:
          bar.advance(len(rows))
      yield indices, np.concatenate(audio).reshape(len(indices), num_songs, grid.clip_samples)

  return stitch_windows(grid, decoded(), num_songs)


@dataclasses.dataclass
class Generated:
  """What a mode produced.

  Attributes:
    mode: one of MODES.
    waveforms: float32 [num_outputs, samples] at `sample_rate_hz`.
    latents: float32 [num_windows, num_outputs, z_size], the codes decoded per window.
    sample_rate_hz: the model's rate (Hz).
    labels: one short caption per output, for plots.
    marked: outputs to highlight in plots (the interpolation's endpoints).
  """

  mode: str
  waveforms: np.ndarray
  latents: np.ndarray
  sample_rate_hz: int
  labels: Tuple[str, ...]
  marked: Tuple[int, ...] = ()

  @property
  def num_outputs(self) -> int:
    return self.waveforms.shape[0]


def _render(backend: Backend, mode: str, latents: np.ndarray, grid: WindowGrid,
            labels: Sequence[str], marked: Sequence[int], griffin_lim_iters: Optional[int],
            bar: _Progress) -> Generated:
  waveforms = decode_song(backend, latents, grid, griffin_lim_iters, bar)
  return Generated(mode, audio_io.limit_peaks(waveforms), latents, backend.config.sample_rate_hz,
                   tuple(labels), tuple(marked))


def interpolate(backend: Backend, song_1: np.ndarray, song_2: np.ndarray, num_outputs: int = 5,
                griffin_lim_iters: Optional[int] = None, progress: bool = False,
                refine_steps: int = 0) -> Generated:
  """The music between two songs: slerp between each window pair's encoder means.

  song_1, song_2: float32 [samples] at the model's rate; the outputs take the shorter
  length (see the module docstring). Returns `num_outputs` (>= 2) songs, the first
  song 1's reconstruction and the last song 2's. `refine_steps` > 0 refines each
  window's mean first (see `encode_song`).
  """
  if num_outputs < 2:
    raise GenerationError(f"an interpolation needs at least 2 outputs, its endpoints "
                          f"(got {num_outputs})")
  grid = WindowGrid.for_song(min(len(song_1), len(song_2)), backend.config.clip_samples)
  bar = _Progress(grid.num_windows * (2 + num_outputs), progress)
  mu_1 = encode_song(backend, song_1, grid, bar, refine_steps)
  mu_2 = encode_song(backend, song_2, grid, bar, refine_steps)
  steps = np.linspace(0.0, 1.0, num_outputs, dtype=np.float32)
  latents = latent.slerp(mu_1[:, np.newaxis], mu_2[:, np.newaxis], steps).numpy()
  labels = [f"t={t:.2f}" + (" (input 1)" if i == 0 else " (input 2)" if i == num_outputs - 1
                            else "") for i, t in enumerate(steps)]
  return _render(backend, "interpolate", latents, grid, labels, (0, num_outputs - 1),
                 griffin_lim_iters, bar)


def sample(backend: Backend, num_outputs: int = 5, temperature: float = 0.5, seed: int = 0,
           griffin_lim_iters: Optional[int] = None, progress: bool = False) -> Generated:
  """`num_outputs` clips of `clip_seconds` decoded from z ~ N(0, temperature^2 I).

  The draw is a stateless normal seeded by `seed` (as `WaveMusicVAE.sample`), so
  the same seed gives the same clips.
  """
  if num_outputs < 1:
    raise GenerationError(f"num_outputs must be at least 1 (got {num_outputs})")
  if not 0 < temperature <= latent.MAX_TEMPERATURE:  # NaN fails too.
    raise GenerationError(f"temperature must be in (0, {latent.MAX_TEMPERATURE:g}] "
                          f"(got {temperature})")
  grid = WindowGrid.for_song(backend.config.clip_samples, backend.config.clip_samples)
  z = latent.prior_sample(num_outputs, backend.config.z_size, temperature, seed)
  labels = [f"sample {i:03d}" for i in range(num_outputs)]
  return _render(backend, "sample", z.numpy()[np.newaxis], grid, labels, (), griffin_lim_iters,
                 _Progress(num_outputs, progress))


@dataclasses.dataclass(frozen=True)
class LatentEdit:
  """Edits of a latent code, applied in this order to every window's mu:

  1. flatten: shrink toward the prior mean, z * (1 - flatten_factor);
  2. attributes: add amount * vector for each (name, amount);
  3. scales: multiply dimension d by a factor, for each (d, factor);
  4. sets: set dimension d to a value, for each (d, value);
  5. max_out: set each dimension in `max_out_dims` to `max_out_stddevs` prior
     standard deviations on its own side.
  Explicit values come last so that they hold. Every amount at its neutral value
  (factor 0, amount 0, scale 1) leaves z unchanged.
  """

  sets: Tuple[Tuple[int, float], ...] = ()
  scales: Tuple[Tuple[int, float], ...] = ()
  max_out_dims: Tuple[int, ...] = ()
  max_out_stddevs: float = 3.0
  flatten_factor: float = 0.0
  attributes: Tuple[Tuple[str, float], ...] = ()

  def check(self, z_size: int, attribute_vectors: Dict[str, np.ndarray]) -> None:
    """Raises GenerationError naming the first dimension or attribute that does not exist."""
    for dim in [d for d, _ in self.sets + self.scales] + list(self.max_out_dims):
      if not 0 <= dim < z_size:
        raise GenerationError(f"latent dimension {dim} does not exist (z_size is {z_size}: "
                              f"dimensions 0 to {z_size - 1})")
    for name, _ in self.attributes:
      if name not in attribute_vectors:
        # A name with spaces at either end is quoted, so that it can be told apart.
        available = ", ".join(n if n == n.strip() else repr(n)
                              for n in sorted(attribute_vectors)) or "none"
        raise GenerationError(f"unknown attribute {name!r} (this checkpoint has: {available})")
    amounts = ([v for _, v in self.sets + self.scales + self.attributes]
               + [self.max_out_stddevs])
    if not all(math.isfinite(v) for v in amounts):
      raise GenerationError("latent edits must be finite numbers (got NaN or infinity)")
    too_large = [v for v in amounts if abs(v) > latent.MAX_EDIT]
    if too_large:
      raise GenerationError(f"latent edit value {too_large[0]:g} is beyond ±{latent.MAX_EDIT:g} "
                            "(z is in prior standard deviations)")
    if self.max_out_stddevs < 0:
      raise GenerationError(f"max-out stddevs {self.max_out_stddevs:g}: must not be negative "
                            "(the dimension is pushed on its own side)")
    if not 0.0 <= self.flatten_factor <= 1.0:
      raise GenerationError(f"flatten factor {self.flatten_factor}: must be in [0, 1]")

  def apply(self, z: np.ndarray, attribute_vectors: Dict[str, np.ndarray]) -> np.ndarray:
    """z float32 [batch, z_size] -> edited z, same shape."""
    z = latent.flatten(z, self.flatten_factor)
    for name, amount in self.attributes:
      z = latent.add_attribute(z, attribute_vectors[name], amount)
    z = z.numpy()
    for dim, factor in self.scales:
      z[:, dim] *= factor
    if self.sets:
      z = latent.set_dimensions(z, [d for d, _ in self.sets], [v for _, v in self.sets]).numpy()
    for dim in self.max_out_dims:
      z = latent.max_out(z, dim, self.max_out_stddevs).numpy()
    return np.asarray(z, np.float32)


def _split_pair(text: str, what: str) -> Tuple[str, str]:
  left, sep, right = text.partition(":")
  if not sep or not left.strip() or not right.strip():
    raise GenerationError(f"{text!r}: expected {what}")
  return left.strip(), right.strip()


def parse_tweak(text: str) -> Tuple[str, int, float]:
  """'DIM:VALUE' -> ('set', DIM, VALUE); 'DIM:xFACTOR' -> ('scale', DIM, FACTOR)."""
  dim, value = _split_pair(text, "DIM:VALUE (set) or DIM:xFACTOR (scale), e.g. 3:1.5 or 3:x2")
  kind = "scale" if value[0] in "x*" else "set"
  try:
    if not re.fullmatch(r"-?[0-9]+", dim):   # int() also takes '1_0' and other scripts' digits
      raise ValueError(dim)
    return kind, int(dim), float(value[1:] if kind == "scale" else value)
  except ValueError:
    raise GenerationError(f"{text!r}: DIM must be an integer and VALUE a number") from None


def parse_attribute(text: str) -> Tuple[str, float]:
  """'NAME:AMOUNT' -> (NAME, AMOUNT); the name may itself hold ':' (split at the last), and is
  kept exactly as written: labels are folder names, and ' ambient' is not 'ambient'."""
  name, sep, amount = text.rpartition(":")
  if not sep or not name.strip():
    raise GenerationError(f"{text!r}: expected NAME:AMOUNT, e.g. jazz:1.5")
  try:
    return name, float(amount)
  except ValueError:
    raise GenerationError(f"{text!r}: AMOUNT must be a number") from None


def _encode_edit_decode(backend: Backend, song: np.ndarray, edit: LatentEdit, mode: str,
                        griffin_lim_iters: Optional[int], progress: bool,
                        refine_steps: int) -> Generated:
  edit.check(backend.config.z_size, backend.attributes)
  grid = WindowGrid.for_song(len(song), backend.config.clip_samples)
  bar = _Progress(2 * grid.num_windows, progress)
  mu = encode_song(backend, song, grid, bar, refine_steps)
  latents = edit.apply(mu, backend.attributes)[:, np.newaxis]
  return _render(backend, mode, latents, grid, [mode], (), griffin_lim_iters, bar)


def tweak(backend: Backend, song: np.ndarray, edit: LatentEdit,
          griffin_lim_iters: Optional[int] = None, progress: bool = False,
          refine_steps: int = 0) -> Generated:
  """A new "cover" of one song float32 [samples]: `edit` applied to every window's mu.

  Returns one output [1, samples]. An edit at its neutral amounts gives exactly the
  reconstruction. `refine_steps` > 0 refines each mean first (see `encode_song`).
  """
  return _encode_edit_decode(backend, song, edit, "tweak", griffin_lim_iters, progress,
                             refine_steps)


def reconstruct(backend: Backend, song: np.ndarray, griffin_lim_iters: Optional[int] = None,
                progress: bool = False, refine_steps: int = 0) -> Generated:
  """One song float32 [samples] encoded (means, refined if `refine_steps` > 0) and decoded
  back: [1, samples]."""
  return _encode_edit_decode(backend, song, LatentEdit(), "reconstruct", griffin_lim_iters,
                             progress, refine_steps)


def timestamp() -> str:
  """'YYYY-mm-dd_HHMMSS' in local time, as music_vae_generate's file names."""
  return time.strftime("%Y-%m-%d_%H%M%S")


def output_paths(output_dir, mode: str, num_outputs: int, output_format: str,
                 date_and_time: str) -> List[Path]:
  """`<output_dir>/<mode>_<date_and_time>-<i>-of-<num_outputs>.<output_format>`, i from 000."""
  if output_format not in OUTPUT_FORMATS:
    raise GenerationError(f"output format {output_format!r}; valid: {', '.join(OUTPUT_FORMATS)}")
  return [Path(output_dir) / f"{mode}_{date_and_time}-{i:03d}-of-{num_outputs:03d}.{output_format}"
          for i in range(num_outputs)]


def plot_path(output_dir, mode: str, date_and_time: str) -> Path:
  """`<output_dir>/<mode>_<date_and_time>.png`, beside the audio it shows."""
  return Path(output_dir) / f"{mode}_{date_and_time}.png"


def check_outputs(paths: Sequence[Path], inputs: Sequence[Path], overwrite: bool) -> List[Path]:
  """Raises for an output path that must not or cannot be written; returns those of
  `paths` that exist (to be overwritten, as `overwrite` allows).

  GenerationError: a path that is one of the inputs (even with `overwrite`), or one
  that exists while not `overwrite`. OutputPathError: one in a folder that cannot
  be made or written in.
  Checked before any work, so a long run never ends in a refused write.
  """
  for folder in dict.fromkeys(Path(p).parent for p in paths):
    output_locations.check_folder(folder)
  protected = {os.path.realpath(p) for p in inputs}
  for path in paths:
    if os.path.realpath(path) in protected:
      raise GenerationError(f"{path}: is one of the inputs (never overwritten)")
    if path.exists() and not overwrite:
      raise GenerationError(f"{path}: already exists (not overwritten)")
  return [path for path in paths if path.exists()]


def _temporaries_of_claim(claim: Path) -> List[Path]:
  """The temporary files (`paths_lib.temporary_beside`) of the songs and plot named by `claim`,
  `.<mode>_<stamp>.claim`: only the claim's holder writes them."""
  stems = re.compile(rf"{re.escape(claim.name[1:-len('.claim')])}(?:-\d{{3}}-of-\d{{3}})?")
  found = (paths_lib.TEMPORARY_NAME.fullmatch(p.name) for p in claim.parent.glob(".*.partial-*"))
  return [claim.parent / name.group(0) for name in found if name and stems.fullmatch(name.group(1))]


@contextlib.contextmanager
def claimed_outputs(output_dir, mode: str, num_outputs: int, output_format: str,
                    date_and_time: str, with_plot: bool, existed: Collection[Path]
                    ) -> Iterator[Tuple[List[Path], Optional[Path]]]:
  """(song paths, plot path or None) that no other run is writing, held while in the block.

  Names carry the second the run started, so runs started in the same second into the
  same folder (`for f in *.mp3; do wave_music_vae_generate ... & done`) would otherwise
  write the same files: the later refused at the end of its work, or, with --overwrite,
  one run's songs silently replaced by another's. A run claims `date_and_time` by
  taking the lock of `.<mode>_<date_and_time>.claim` in `output_dir` (`locks.take`);
  when a running process holds it, or one of its outputs was written since the run
  checked them (not in `existed`), it claims `<date_and_time>-2`, then `-3`, and so on.
  The claim file is removed when the block ends. A run killed with SIGKILL cannot remove
  it, but the system lets go of its lock: the next run into `output_dir` removes such
  abandoned claims, with the temporary files of the songs they named, and can take
  their names.

  Raises:
    GenerationError: `output_dir` cannot be made.
  """
  folder = Path(output_dir)
  try:
    folder.mkdir(parents=True, exist_ok=True)
  except OSError as e:
    raise GenerationError(f"{folder}: cannot be made ({e.strerror})") from None
  for claim in folder.glob(".*.claim"):
    if CLAIM_PATTERN.fullmatch(claim.name):
      locks.remove_abandoned(claim, _temporaries_of_claim(claim))
  existed = {os.path.realpath(p) for p in existed}
  for attempt in itertools.count(1):
    stamp = date_and_time if attempt == 1 else f"{date_and_time}-{attempt}"
    paths = output_paths(folder, mode, num_outputs, output_format, stamp)
    plot = plot_path(folder, mode, stamp) if with_plot else None
    claim = folder / f".{mode}_{stamp}.claim"
    held = locks.take(claim, create=True)
    if held is None:
      continue
    if not any(p.exists() and os.path.realpath(p) not in existed
               for p in paths + ([plot] if plot else [])):
      break
    locks.release(claim, held)
  try:
    yield paths, plot
  finally:
    locks.release(claim, held)


def write_outputs(generated: Generated, paths: Sequence[Path], overwrite: bool = False
                  ) -> List[Path]:
  """Writes each output song to its path (format from the extension); returns the paths.

  Each file is written under a temporary name and renamed into place
  (`audio_io.write_audio`), so a failure leaves no partial file.
  """
  if len(paths) != generated.num_outputs:
    raise GenerationError(f"{len(paths)} paths for {generated.num_outputs} outputs")
  for folder in dict.fromkeys(Path(p).parent for p in paths):
    try:
      folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
      raise GenerationError(f"{folder}: cannot be made ({e.strerror})") from None
  return [audio_io.write_audio(path, waveform, generated.sample_rate_hz, overwrite)
          for path, waveform in zip(paths, generated.waveforms)]
