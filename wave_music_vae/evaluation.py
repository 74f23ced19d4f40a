"""Measures a trained model on held-out clips, beside simple baselines on the same clips.

`evaluate(backend, held_out, train)` runs every measurement through a `Backend`
(Keras weights or a SavedModel), so any model the commands load can be judged, and
returns a nested dict of plain numbers, strings and lists (JSON-ready):
  data            where the clips came from and how many
  reconstruction  model (decode(mu), Griffin-Lim) vs ceiling (Griffin-Lim of the input's
                  own mel), floor (Griffin-Lim of the training clips' mean mel) and a PCA
                  of the same size as z, the share of the floor-to-ceiling gap closed,
                  and each model row minus PCA on the same clips with a bootstrap CI;
                  with refine_steps > 0 also `model_refined`, decode of mu refined by
                  that many gradient steps (`refinement`), a separate row
  latent          KL per dimension, active units, mean and spread of |mu|
  interpolation   monotonicity, evenness and cycle error of paths between held-out pairs
  realism         Fréchet distance of log-mel frames to the held-out music, for prior
                  samples, interpolation midpoints and 50/50 crossfades of the same pairs
  probe           logistic regression predicting the label from mu vs from mean log-mel
The figures themselves are the functions of `metrics.py`; docs/metrics.md defines each.
A NaN or infinity anywhere in the result raises `EvaluationError`. `format_table`
renders the result for a terminal. No flags are read here (see cli/evaluate.py).
"""

import collections
import dataclasses
import math
from typing import Callable, Optional, Sequence

import numpy as np
import tensorflow as tf

from wave_music_vae import audio_io
from wave_music_vae import data
from wave_music_vae import latent
from wave_music_vae import metrics
from wave_music_vae import spectral
from wave_music_vae.config import Config

INTERPOLATION_STEPS = 7
TEMPERATURES = (0.5, 1.0)
# Held-out clips quieter than audio_io.SILENCE_DBFS are left out and counted: spectral
# convergence divides by the reference's magnitude, so one silent clip would outweigh
# every other clip in the means.
SILENCE_DBFS = audio_io.SILENCE_DBFS


class EvaluationError(ValueError):
  """Clips that cannot be evaluated, or a result that is not finite."""


@dataclasses.dataclass(frozen=True)
class Clips:
  """Clips to evaluate: audio float32 [clips, clip_samples], labels [clips] str, and
  sources [clips]: the song each clip was cut from (its relative path, bytes)."""

  audio: np.ndarray
  labels: np.ndarray
  split: str          # Where the clips come from, for the report.
  silent_left_out: int = 0   # Clips below SILENCE_DBFS that were dropped.
  sources: Optional[np.ndarray] = None   # None: unknown (every clip its own song).

  def __len__(self):
    return len(self.audio)


def _collect(dataset: tf.data.Dataset, keep: Optional[np.ndarray] = None):
  """Batches of {'audio', 'label', 'source'} -> (audio [clips, samples], labels [clips] str,
  sources [clips] bytes); with `keep`, only the clips at those (sorted) positions."""
  audio, labels, sources = [], [], []
  start = 0
  for batch in dataset:
    rows = np.arange(len(batch["label"]))
    if keep is not None:
      rows = keep[(keep >= start) & (keep < start + len(rows))] - start
      start += len(batch["label"])
      if not len(rows):
        continue
    audio.append(batch["audio"].numpy()[rows])
    labels.extend(label.decode("utf-8") for label in batch["label"].numpy()[rows])
    sources.extend(batch["source"].numpy()[rows])
  if not audio:
    return np.zeros([0, 0], np.float32), np.array([], str), np.array([], object)
  return np.concatenate(audio), np.array(labels), np.array(sources, object)


def _even_subset(sources: np.ndarray, max_clips: int) -> np.ndarray:
  """Sorted indices of up to `max_clips` of the clips cut from `sources`: evenly spaced
  through them, every song keeping a clip where there are enough (`_with_every_song`)."""
  if len(sources) <= max_clips:
    return np.arange(len(sources))
  keep = np.unique(np.round(np.linspace(0, len(sources) - 1, max_clips)).astype(int))
  return _with_every_song(keep, sources)


def _with_every_song(keep: np.ndarray, sources: np.ndarray) -> np.ndarray:
  """Indices `keep` (into clips cut from `sources`), changed where need be so that every song
  keeps a clip, where there are as many indices as songs: a song left out (a short one, whose
  only clip the even spacing stepped over) takes its middle clip in place of the last kept
  clip of the song that keeps most."""
  songs = list(dict.fromkeys(sources))
  if len(songs) > len(keep):
    return keep
  keep = list(keep)
  kept = collections.Counter(sources[keep])
  for song in songs:
    if kept[song]:
      continue
    donor = max(kept, key=lambda s: (kept[s], -songs.index(s)))
    keep.remove(max(i for i in keep if sources[i] == donor))
    kept[donor] -= 1
    clips = np.flatnonzero(sources == song)
    keep.append(int(clips[len(clips) // 2]))
    kept[song] = 1
  return np.array(sorted(keep))


def load_clips(source: data.DatasetSource, config: Config, split: str, max_clips: int) -> Clips:
  """Up to `max_clips` clips of a split, spread evenly over its files.

  From a folder: fixed crops (evenly spaced through each file, see `data.fixed_crops`)
  of every file of the split, ceil(max_clips / files) per file, then an evenly spaced
  subset of `max_clips` in which every file keeps a clip (`_with_every_song`; when
  `max_clips` is at least the number of files). From TFRecords: the same evenly spaced
  subset of all the split's clips (fixed crops) once they are grouped by song as a
  folder's are (in the order they are read, a song's clips lie together in one shard
  but one a shard apart across several, and an even spacing would alias with that),
  found in two passes, the first parsing only which song each clip is of.

  Raises:
    data.DataError: the split holds no readable clip.
  """
  if source.is_tfrecord:
    sources = data.tfrecord_sources(source.examples_path, split)
    by_song = np.argsort(sources, kind="stable")
    keep = np.sort(by_song[_even_subset(sources[by_song], max_clips)])
    audio, labels, sources = _collect(data.tfrecord_dataset(
        source.examples_path, config, split, batch_size=256, repeat=False, with_source=True,
        as_eval=True), keep=keep)
  else:
    files = source.files(split, config)
    if not files:
      raise data.DataError(f"{source.examples_path}: the {split} split has no files "
                           f"({data.split_setting(config)})")
    per_file = max(1, math.ceil(max_clips / len(files)))
    crops = dataclasses.replace(config, clips_per_file=per_file)
    audio, labels, sources = _collect(
        data.folder_dataset(files, crops, "eval", source.skipped, with_source=True))
    keep = _even_subset(sources, max_clips)
    audio, labels, sources = audio[keep], labels[keep], sources[keep]
  if not len(audio):
    raise data.DataError(f"{source.examples_path}: its {split} split gave no clips (it is empty, "
                         f"or none of its files could be read; {source.skipped.summary()})")
  return Clips(audio.astype(np.float32), labels, split, sources=sources)


def held_out_clips(source: data.DatasetSource, config: Config, max_clips: int) -> Clips:
  """The eval split's clips; a folder with an empty eval split falls back to its train files.

  The fallback (as `wave_music_vae_train --mode=eval` does) keeps small test sets
  usable; its `split` says that those clips are not held out.
  """
  if source.is_tfrecord or source.files("eval", config):
    clips = load_clips(source, config, "eval", max_clips)
  else:
    clips = dataclasses.replace(
        load_clips(source, config, "train", max_clips),
        split=f"train (not held out: the eval split is empty at {data.split_setting(config)})")
  return without_silence(clips)


def without_silence(clips: Clips) -> Clips:
  """`clips` less those whose RMS is below SILENCE_DBFS, counted in `silent_left_out`.

  Raises:
    data.DataError: every clip is silent.
  """
  loud = audio_io.audible(clips.audio)
  if not loud.any():
    raise data.DataError(f"all {len(clips)} clips of the {clips.split} split are silent "
                         f"(RMS below {SILENCE_DBFS:g} dBFS): nothing to evaluate")
  return dataclasses.replace(clips, audio=clips.audio[loud], labels=clips.labels[loud],
                             sources=None if clips.sources is None else clips.sources[loud],
                             silent_left_out=clips.silent_left_out + int((~loud).sum()))


def _map_batches(function: Callable, inputs: np.ndarray, batch_size: int,
                 advance: Callable[[int], None], what: str) -> list:
  """Applies function (returning a tuple of arrays) batch by batch; concatenates each output.

  Raises EvaluationError, naming `what` was computed, if an output is not finite.
  """
  outputs = []
  for start in range(0, len(inputs), batch_size):
    chunk = inputs[start:start + batch_size]
    outputs.append(function(chunk))
    advance(len(chunk))
  results = [np.concatenate(parts) for parts in zip(*outputs)]
  for result in results:
    if not np.all(np.isfinite(result)):
      raise EvaluationError(f"{what} gave NaN or infinite values")
  return results


class MelInverter:
  """The model's own log-mel (dB) and its Griffin-Lim inverse, as compiled graphs."""

  def __init__(self, config: Config):
    self.config = config
    self.mel = spectral.MelSpectrogram.from_config(config)
    clips = tf.TensorSpec([None, config.clip_samples], tf.float32)
    mels = tf.TensorSpec([None, config.num_frames, config.n_mels], tf.float32)
    self._log_mel_db = tf.function(self.mel.log_mel_db, input_signature=[clips])
    self._to_waveform = tf.function(
        lambda log_mel_db: self.mel.db_to_waveform(
            log_mel_db, config.clip_samples, config.griffin_lim_iters,
            config.griffin_lim_momentum), input_signature=[mels])

  def log_mel_db(self, waveforms: np.ndarray):
    """waveforms [batch, clip_samples] -> (log-mel dB [batch, frames, n_mels],)."""
    return (self._log_mel_db(tf.convert_to_tensor(waveforms, tf.float32)).numpy(),)

  def to_waveform(self, log_mel_db: np.ndarray):
    """Log-mel dB [batch, frames, n_mels] -> (waveform [batch, clip_samples],), Griffin-Lim."""
    clipped = np.clip(log_mel_db, self.config.db_floor, spectral.MAX_DB).astype(np.float32)
    return (self._to_waveform(tf.convert_to_tensor(clipped)).numpy(),)


AUDIO_METRICS = ("mr_stft", "log_mel_l1_db")


def _per_clip_scores(estimate: np.ndarray, reference: np.ndarray, sample_rate_hz: int) -> dict:
  """Each audio metric per clip: {metric: float64 [clips]}."""
  return {"mr_stft": metrics.multi_resolution_stft_distance(estimate, reference),
          "log_mel_l1_db": metrics.log_mel_l1_db(estimate, reference, sample_rate_hz)}


def _summary(per_clip: dict) -> dict:
  """Mean and spread over clips of each metric of `_per_clip_scores`."""
  summary = {}
  for key in AUDIO_METRICS:
    summary[key] = float(np.mean(per_clip[key]))
    summary[f"{key}_std"] = float(np.std(per_clip[key]))
  return summary


def _gap_closed(scores: dict, ceiling: dict, floor: dict) -> dict:
  """(floor - score) / (floor - ceiling) per metric; None where the floor is not above ceiling."""
  closed = {}
  for key in AUDIO_METRICS:
    gap = floor[key] - ceiling[key]
    closed[key] = (floor[key] - scores[key]) / gap if gap > 0 else None
  return closed


def _probe_section(mu: np.ndarray, train_mu: np.ndarray, mean_log_mel: np.ndarray,
                   train_mean_log_mel: np.ndarray, held_out: Clips, train: Clips,
                   seed: int) -> dict:
  # Songs with no label (at the top of a folder) are no class of their own: left out.
  labelled, labelled_held_out = train.labels != "", held_out.labels != ""
  unlabelled = int((~labelled).sum() + (~labelled_held_out).sum())
  labels, held_out_labels = train.labels[labelled], held_out.labels[labelled_held_out]
  songs = None if train.sources is None else train.sources[labelled]
  try:
    folds = metrics.probe_folds(labels)
  except ValueError as e:
    return {"skipped": f"labelled training clips: {e}", "unlabelled_clips_left_out": unlabelled}
  if not len(held_out_labels):
    return {"skipped": "no held-out clip has a label", "unlabelled_clips_left_out": unlabelled}
  # Folds by song where every label has 2 songs or more (a song's clips sound alike, so a
  # probe scored on a song it was fitted on is flattered); otherwise by clip.
  groups, grouped_by = None, "clip"
  if songs is not None:
    try:
      folds = metrics.probe_folds(labels, groups=songs)
      groups, grouped_by = songs, "song"
    except ValueError:
      pass
  section = {"labels": sorted(set(labels)), "cv_folds": folds, "cv_grouped_by": grouped_by,
             "unlabelled_clips_left_out": unlabelled,
             "chance_held_out": metrics.majority_accuracy(labels, held_out_labels),
             "chance_cv": metrics.majority_accuracy(labels, labels)}
  for name, train_features, features in (("mu", train_mu, mu),
                                         ("mean_log_mel", train_mean_log_mel, mean_log_mel)):
    train_features, features = train_features[labelled], features[labelled_held_out]
    cv_mean, cv_std = metrics.cross_validated_accuracy(train_features, labels, folds, seed,
                                                       groups)
    section[name] = {
        "held_out_accuracy": metrics.held_out_accuracy(train_features, labels, features,
                                                       held_out_labels),
        "cv_accuracy": cv_mean, "cv_accuracy_std": cv_std}
  return section


def evaluate(backend, held_out: Clips, train: Clips,
             interpolation_steps: int = INTERPOLATION_STEPS,
             temperatures: Sequence[float] = TEMPERATURES, seed: int = 0,
             progress: Optional[Callable[[int, int], None]] = None,
             refine_steps: int = 0) -> dict:
  """Every measurement of the module docstring; returns the nested result dict.

  Args:
    backend: an `inference.Backend` (encode/decode numpy in and out).
    held_out: the clips measured, at the backend's clip length and rate.
    train: training-split clips: the PCA baseline and the probes are fitted on them,
      and the floor's mean mel is theirs.
    interpolation_steps: codes per path, endpoints included (the held-out clips are
      paired first half against second half).
    temperatures: prior samples z = temperature * N(0, I), as many as held-out clips.
    seed: seeds the prior samples, the PCA and the probe's folds.
    progress: called as progress(done, total) in clips passed through the model or
      Griffin-Lim.
    refine_steps: > 0 adds the `model_refined` reconstruction row: the held-out clips'
      mu refined by this many steps (`Backend.encode_refined`), decoded. Every other
      figure stays on the plain encoder mean.

  Raises:
    EvaluationError: too few clips, clips of the wrong length, or a non-finite figure.
  """
  config = backend.config
  for clips, name in ((held_out, "held-out"), (train, "training")):
    if len(clips) < 2:
      raise EvaluationError(f"need at least 2 {name} clips, got {len(clips)}")
    if clips.audio.shape[1] != config.clip_samples:
      raise EvaluationError(f"{name} clips hold {clips.audio.shape[1]} samples; the model "
                            f"takes {config.clip_samples} ({config.clip_seconds:g} s)")
  if interpolation_steps < 3:
    raise EvaluationError(f"interpolation_steps={interpolation_steps}: need at least 3")
  n, num_pairs = len(held_out), len(held_out) // 2
  rate, batch = config.sample_rate_hz, config.batch_size
  total = (4 * n + len(train) + 1 + num_pairs * (2 * interpolation_steps - 2)
           + len(temperatures) * n + (2 * n if refine_steps > 0 else 0))
  done = 0

  def advance(count: int) -> None:
    nonlocal done
    done += count
    if progress:
      progress(done, total)

  inverter = MelInverter(config)

  def batches(function, inputs, what, counted=True):
    return _map_batches(function, inputs, batch, advance if counted else lambda _: None, what)

  # Reconstruction: model, ceiling, floor, PCA; all inverted with the same Griffin-Lim.
  _, mu, sigma = batches(backend.encode, held_out.audio, "encoding held-out clips")
  _, train_mu, _ = batches(backend.encode, train.audio, "encoding training clips")
  true_db, = batches(inverter.log_mel_db, held_out.audio, "log-mel of held-out clips", False)
  train_db, = batches(inverter.log_mel_db, train.audio, "log-mel of training clips", False)
  model_audio, _ = batches(backend.decode, mu, "decoding the held-out mu")
  ceiling_audio, = batches(inverter.to_waveform, true_db, "Griffin-Lim of the true mel")
  mean_mel = np.broadcast_to(train_db.mean(axis=(0, 1)), true_db.shape[1:])[np.newaxis]
  floor_audio = np.repeat(inverter.to_waveform(mean_mel)[0], n, axis=0)
  advance(1)
  pca = metrics.fit_pca(train_db, config.z_size, seed)
  pca_audio, = batches(inverter.to_waveform, metrics.pca_reconstruct(pca, true_db),
                       "Griffin-Lim of the PCA reconstruction")
  audio_rows = [("ceiling", ceiling_audio), ("model", model_audio), ("pca", pca_audio),
                ("floor", floor_audio)]
  if refine_steps > 0:
    refined, = batches(lambda clips: (backend.encode_refined(clips, refine_steps),),
                       held_out.audio, f"refining mu ({refine_steps} steps)")
    audio_rows.append(("model_refined", batches(backend.decode, refined,
                                                "decoding the refined mu")[0]))
  per_clip = {name: _per_clip_scores(audio, held_out.audio, rate) for name, audio in audio_rows}
  rows = {name: _summary(scores) for name, scores in per_clip.items()}
  rows["pca"]["components"] = int(pca.n_components_)
  if refine_steps > 0:
    rows["model_refined"]["refine_steps"] = int(refine_steps)
  models = [name for name in rows if name.startswith("model")]
  reconstruction = {
      **rows,
      "gap_closed": {name: _gap_closed(rows[name], rows["ceiling"], rows["floor"])
                     for name in rows if name not in ("ceiling", "floor")},
      "versus_pca": {name: {key: metrics.paired_difference(per_clip[name][key],
                                                           per_clip["pca"][key], seed=seed)
                            for key in AUDIO_METRICS} for name in models}}

  # Latent health, over the held-out clips.
  kl = metrics.kl_per_dimension(mu, sigma)
  active = metrics.active_units(mu)
  latent_health = {
      "z_size": config.z_size, "active_units": active, "active_fraction": active / config.z_size,
      "active_threshold": metrics.ACTIVE_UNIT_VARIANCE,
      "kl_nats_total": float(np.sum(kl)), "kl_nats_per_dimension": [float(v) for v in kl],
      "mu_variance_per_dimension": [float(v) for v in np.var(mu, axis=0)],
      "abs_mu_mean": float(np.mean(np.abs(mu))), "abs_mu_std": float(np.std(np.abs(mu))),
      "sigma_mean": float(np.mean(sigma))}

  # Interpolation between held-out pairs (first half x second half), slerp on mu.
  starts, ends = mu[:num_pairs], mu[num_pairs:2 * num_pairs]
  paths = np.stack([latent.interpolation_path(a, b, interpolation_steps).numpy()
                    for a, b in zip(starts, ends)])                    # [pairs, steps, z]
  path_audio, path_log_mel = batches(backend.decode, paths.reshape(-1, config.z_size),
                                     "decoding interpolations")
  path_audio = path_audio.reshape(num_pairs, interpolation_steps, -1)
  path_db = (path_log_mel * config.db_scale + config.db_center).reshape(
      num_pairs, interpolation_steps, config.num_frames, config.n_mels)
  inner = paths[:, 1:-1].reshape(-1, config.z_size)
  _, inner_mu, _ = batches(backend.encode, path_audio[:, 1:-1].reshape(-1, config.clip_samples),
                           "re-encoding interpolations")
  cycle = metrics.cycle_errors(inner, inner_mu)
  ratios = [metrics.step_ratio(path) for path in path_db]
  interpolation = {
      "pairs": num_pairs, "steps": interpolation_steps,
      "monotonic_fraction": float(np.mean([metrics.is_monotonic_path(p) for p in path_db])),
      "step_ratio_mean": float(np.mean(ratios)), "step_ratio_max": float(np.max(ratios)),
      "cycle_error_mean": float(np.mean(cycle)), "cycle_error_std": float(np.std(cycle)),
      "endpoint_distance_mean": float(np.mean(np.linalg.norm(starts - ends, axis=1)))}

  # Realism: Fréchet distance of log-mel frame statistics to the held-out music.
  reference = metrics.gaussian_statistics(metrics.log_mel_db(held_out.audio, rate))
  rng = np.random.default_rng(seed)
  sets = {}
  for temperature in temperatures:
    z = (temperature * rng.standard_normal([n, config.z_size])).astype(np.float32)
    sets[f"prior_temperature_{temperature:g}"] = batches(
        backend.decode, z, f"decoding prior samples at temperature {temperature:g}")[0]
  middle = interpolation_steps // 2
  sets["interpolation_midpoints"] = path_audio[:, middle]
  sets["crossfades"] = 0.5 * (held_out.audio[:num_pairs] + held_out.audio[num_pairs:2 * num_pairs])
  sets["real_subset"] = held_out.audio[:num_pairs]
  sets["reconstructions"] = model_audio
  sets["ceiling"] = ceiling_audio
  realism = {
      "midpoint_t": float(middle / (interpolation_steps - 1)), "reference_clips": n,
      "frechet_db2": {name: metrics.frechet_distance(
          *metrics.gaussian_statistics(metrics.log_mel_db(audio, rate)), *reference)
                      for name, audio in sets.items()},
      "clips": {name: len(audio) for name, audio in sets.items()}}

  probe = _probe_section(mu, train_mu, true_db.mean(axis=1), train_db.mean(axis=1), held_out,
                         train, seed)
  results = {
      "data": {"held_out_split": held_out.split, "held_out_clips": n,
               "silent_clips_left_out": held_out.silent_left_out,
               "train_split": train.split, "train_clips": len(train),
               "clip_seconds": config.clip_seconds, "sample_rate_hz": rate,
               "griffin_lim_iters": config.griffin_lim_iters},
      "reconstruction": reconstruction, "latent": latent_health, "interpolation": interpolation,
      "realism": realism, "probe": probe}
  check_finite(results)
  return results


def check_finite(results, path: str = "results") -> None:
  """Raises EvaluationError naming the first NaN or infinite number in a nested result."""
  if isinstance(results, dict):
    for key, value in results.items():
      check_finite(value, f"{path}.{key}")
  elif isinstance(results, (list, tuple)):
    for i, value in enumerate(results):
      check_finite(value, f"{path}[{i}]")
  elif isinstance(results, (float, np.floating)) and not math.isfinite(results):
    raise EvaluationError(f"{path} is {results}: the model or the clips produce non-finite values")


def _percent(value) -> str:
  return "n/a" if value is None else f"{100.0 * value:.1f}%"


def format_table(results: dict) -> str:
  """The result of `evaluate` as an aligned plain-text table (see docs/metrics.md)."""
  d, r, z = results["data"], results["reconstruction"], results["latent"]
  i, f, p = results["interpolation"], results["realism"], results["probe"]
  lines = [f"held-out: {d['held_out_clips']} clips of {d['clip_seconds']:g} s from the "
           f"{d['held_out_split']} split; training: {d['train_clips']} clips "
           f"({d['train_split']}); Griffin-Lim {d['griffin_lim_iters']} iterations"
           + (f"; {d['silent_clips_left_out']} silent held-out clip(s) left out "
              f"(RMS below {SILENCE_DBFS:g} dBFS)" if d.get("silent_clips_left_out") else ""), ""]
  lines.append(f"{'Reconstruction':<42s}{'MR-STFT':>10s}{'log-mel L1 dB':>15s}"
               f"{'gap closed (MR-STFT / L1)':>28s}")
  labels = {"ceiling": "ceiling: Griffin-Lim of the true mel", "model": "model: decode(mu)"}
  if "model_refined" in r:
    labels["model_refined"] = f"model: mu refined, {r['model_refined']['refine_steps']} steps"
  labels.update({"pca": f"PCA, {r['pca']['components']} components",
                 "floor": "floor: Griffin-Lim of the mean mel"})
  for name, label in labels.items():
    gap = r["gap_closed"].get(name)
    closed = f"{_percent(gap['mr_stft'])} / {_percent(gap['log_mel_l1_db'])}" if gap else ""
    lines.append(f"  {label:<40s}{r[name]['mr_stft']:10.3f}{r[name]['log_mel_l1_db']:15.2f}"
                 f"{closed:>28s}")
  versus = r.get("versus_pca", {})
  if versus:
    confidence = versus["model"]["mr_stft"]["confidence"]
    heading = f"minus PCA, same clips ({confidence:.0%} bootstrap CI)"
    lines += ["", f"  {heading:<40s}"
                  f"{'MR-STFT':>24s}{'log-mel L1 dB':>28s}"]
    for name, comparison in versus.items():
      cells = "".join(
          f"{c['mean']:+9.3f} [{c['ci_low']:+.3f}, {c['ci_high']:+.3f}]".rjust(width)
          for c, width in ((comparison["mr_stft"], 24), (comparison["log_mel_l1_db"], 28)))
      lines.append(f"  {labels[name]:<40s}{cells}")
  lines += ["", "Latent health",
            f"  active units (var of mu > {z['active_threshold']:g})".ljust(44)
            + f"{z['active_units']} / {z['z_size']} ({_percent(z['active_fraction'])})",
            f"  {'KL total, nats (mean per dimension)':<42s}{z['kl_nats_total']:.2f} "
            f"({z['kl_nats_total'] / z['z_size']:.3f})",
            f"  {'|mu| mean (std)':<42s}{z['abs_mu_mean']:.3f} ({z['abs_mu_std']:.3f})",
            f"  {'sigma mean':<42s}{z['sigma_mean']:.3f}",
            "", f"Interpolation ({i['pairs']} held-out pairs, {i['steps']} steps)",
            f"  {'monotonic distance to both ends':<42s}{_percent(i['monotonic_fraction'])}",
            f"  {'largest / mean step (1.0 = even)':<42s}{i['step_ratio_mean']:.2f} "
            f"(worst {i['step_ratio_max']:.2f})",
            f"  {'cycle error |mu(decode(z)) - z|':<42s}{i['cycle_error_mean']:.3f} "
            f"(endpoints {i['endpoint_distance_mean']:.3f} apart)",
            "", f"Realism: Fréchet distance to {f['reference_clips']} held-out clips "
                "(log-mel frames, dB^2)"]
  for name, value in f["frechet_db2"].items():
    lines.append(f"  {name.replace('_', ' '):<42s}{value:10.1f}  ({f['clips'][name]} clips)")
  lines += ["", "Probe: logistic regression predicting the label"]
  if "skipped" in p:
    lines.append(f"  skipped: {p['skipped']}")
  else:
    lines.append(f"  {'features':<42s}{'held-out acc':>13s}{'cv acc (train)':>16s}")
    for name, label in (("mu", "mu"), ("mean_log_mel", "time-averaged log-mel")):
      lines.append(f"  {label:<42s}{_percent(p[name]['held_out_accuracy']):>13s}"
                   f"{_percent(p[name]['cv_accuracy']):>16s}")
    lines.append(f"  {'chance (commonest training label)':<42s}"
                 f"{_percent(p['chance_held_out']):>13s}"
                 f"{_percent(p['chance_cv']):>16s}")
    lines.append(f"  (cv: {p['cv_folds']} folds of the training clips, split by "
                 f"{p['cv_grouped_by']})")
  return "\n".join(lines)
