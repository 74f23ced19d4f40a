"""Pictures of generated audio: the mel spectrograms along an interpolation path.

`plot_spectrograms` draws one panel per output song, top to bottom in path order,
each the log-mel (dB) of the audio as written (what a listener hears), on a
shared colour scale; marked panels (the interpolation's endpoints, i.e. the
reconstructions of the two inputs) get a coloured frame and an "endpoint" tag, so a
person can follow the morph from one song to the other. Matplotlib's object API
with the Agg canvas is used, so no display and no pyplot state are involved.
"""

import os
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from wave_music_vae import paths
from wave_music_vae import spectral
from wave_music_vae.config import Config

MARK_COLOR = "tab:red"
MAX_PANELS = 64   # One panel per song; past this a figure takes minutes and is unreadable.
DYNAMIC_RANGE_DB = 80.0   # Colour scale: the loudest bin down to this many dB below it,
# or, for songs quieter than that above the log-mel floor, the floor up: silence is drawn
# as silence (the scale's bottom), not stretched to fill the colours.


def log_mel_db(waveform: np.ndarray, config: Config) -> np.ndarray:
  """One song float32 [samples] -> log-mel (dB) float32 [frames, n_mels]."""
  mel = spectral.MelSpectrogram.from_config(config)
  return mel.log_mel_db(np.asarray(waveform, np.float32)[np.newaxis]).numpy()[0]


def plot_spectrograms(waveforms: np.ndarray, config: Config, labels: Sequence[str],
                      marked: Sequence[int], path, title: str = "",
                      overwrite: bool = False) -> Path:
  """Writes a PNG of each song's log-mel, one panel per song, to `path`.

  Args:
    waveforms: float32 [num_songs, samples] at `config.sample_rate_hz`.
    config: gives the mel settings (rate, n_fft, hop, n_mels) and the time axis.
    labels: a caption per song.
    marked: indices of songs whose panels are framed in MARK_COLOR (endpoints).
    path: the PNG to write; written to a temporary name, then renamed.
    title: the figure's title.
    overwrite: replace an existing file; otherwise an existing one is an error.

  Returns:
    the path written.

  Raises:
    ValueError: more than MAX_PANELS songs.
    FileExistsError: `path` exists and not `overwrite`.
  """
  path = Path(path)
  if len(waveforms) > MAX_PANELS:
    raise ValueError(f"{path}: {len(waveforms)} songs to plot; at most {MAX_PANELS} panels")
  if path.exists() and not overwrite:
    raise FileExistsError(f"{path}: already exists (not overwritten)")
  mels = [log_mel_db(w, config) for w in waveforms]
  top_db = max(max(float(m.max()) for m in mels), config.db_floor + DYNAMIC_RANGE_DB)
  seconds = waveforms.shape[-1] / config.sample_rate_hz
  figure = Figure(figsize=(10, 1.4 * len(mels) + 0.8), layout="constrained")
  FigureCanvasAgg(figure)
  axes = figure.subplots(len(mels), 1, sharex=True, squeeze=False)[:, 0]
  image = None
  for index, (axis, mel, label) in enumerate(zip(axes, mels, labels)):
    image = axis.imshow(mel.T, origin="lower", aspect="auto", cmap="magma",
                        extent=(0.0, seconds, 0, config.n_mels),
                        vmin=top_db - DYNAMIC_RANGE_DB, vmax=top_db, interpolation="nearest")
    axis.set_ylabel("mel bin")
    is_marked = index in marked
    axis.set_title(f"{index:03d}  {label}" + ("  [endpoint]" if is_marked else ""),
                   loc="left", fontsize=9, color=MARK_COLOR if is_marked else "black")
    if is_marked:
      for spine in axis.spines.values():
        spine.set_color(MARK_COLOR)
        spine.set_linewidth(3)
  axes[-1].set_xlabel("time (s)")
  figure.colorbar(image, ax=list(axes), label="dB", shrink=0.8)
  if title:
    figure.suptitle(title)
  tmp = paths.temporary_beside(path)
  try:
    with warnings.catch_warnings():
      # Song names in scripts the bundled font lacks (日本語, 한국어) are drawn as boxes;
      # matplotlib's warning per missing glyph would otherwise flood the terminal.
      warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from", category=UserWarning)
      figure.savefig(tmp, format="png", dpi=100)
    os.replace(tmp, path)
  finally:
    tmp.unlink(missing_ok=True)
  return path


def read_scalars(event_dir, tags: Sequence[str]) -> dict:
  """{tag: (steps int [n], values float [n])} from the TensorBoard events in `event_dir`."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tensorflow.core.util import event_pb2  # pylint: disable=g-import-not-at-top
  series = {tag: {} for tag in tags}
  for events_file in sorted(Path(event_dir).glob("events.out.tfevents.*")):
    for record in tf.data.TFRecordDataset(str(events_file)):
      event = event_pb2.Event.FromString(record.numpy())
      for value in event.summary.value:
        if value.tag in series:
          series[value.tag][event.step] = float(tf.make_ndarray(value.tensor))
  return {tag: (np.array(sorted(points)), np.array([points[s] for s in sorted(points)]))
          for tag, points in series.items()}


def plot_loss_curves(run_dir, path, tags=("losses/reconstruction_loss", "losses/kl_loss",
                                          "losses/log_mel_l1_db")) -> Path:
  """Writes a PNG with one panel per training scalar of `run_dir/train` (and eval points)."""
  train = read_scalars(Path(run_dir) / "train", tags)
  evaluation = read_scalars(Path(run_dir) / "eval", tags)
  figure = Figure(figsize=(4.0 * len(tags), 3.2))
  FigureCanvasAgg(figure)
  for i, tag in enumerate(tags):
    axes = figure.add_subplot(1, len(tags), i + 1)
    steps, values = train[tag]
    axes.plot(steps, values, linewidth=0.6, alpha=0.35, label="train")
    if len(values):
      smooth = np.copy(values)
      for k in range(1, len(smooth)):  # TensorBoard's exponential smoothing, weight 0.9
        smooth[k] = 0.9 * smooth[k - 1] + 0.1 * values[k]
      axes.plot(steps, smooth, linewidth=1.4, color="tab:blue", label="train (smoothed)")
    if len(evaluation[tag][0]):
      axes.plot(*evaluation[tag], "o", color=MARK_COLOR, label="eval (held-out tracks)")
    axes.set_title(tag.split("/")[-1])
    axes.set_xlabel("step")
    axes.grid(alpha=0.3)
  figure.axes[0].legend()
  figure.tight_layout()
  path = Path(path)
  figure.savefig(str(path), dpi=90)
  return path
