"""Experiment configs as data: one frozen record per named config.

A config holds every choice that defines a run: the data layout, the audio and
spectrogram settings, the model sizes and the training hyperparameters. Named
configs live as JSON files in the repository's `configs/` folder; a config may
name a `base` config and override only what differs, so variants are derived,
never copy-pasted.

`--hparams=batch_size=8,z_size=256` (as in Magenta's `music_vae_train`) is
applied with `override`, which validates names and values and lists the valid
choices on error.
"""

import dataclasses
import json
import math
import os
import sys
from pathlib import Path
from typing import Any, List, Mapping, Optional, Tuple

from wave_music_vae import paths

DATA_LAYOUTS = ("gtzan", "fma", "folder", "tfrecord")
# How songs are split into train and eval: "hash" (a hash of each song's path, at
# `eval_fraction`) or "official" (the dataset's own split: GTZAN's fault-filtered split,
# FMA's tracks.csv; see `data.file_splits`).
SPLIT_METHODS = ("hash", "official")


# Fields renamed since configs were first saved: old name -> new name (same value and unit).
RENAMED_FIELDS = {"free_bits": "free_nats"}


class ConfigError(ValueError):
  """A config name, hparam name or value that cannot be used."""


@dataclasses.dataclass(frozen=True)
class Config:
  """All settings of one experiment. Units are in the field names.

  `split_method` chooses the train/eval split of songs: "hash" (the default) holds out an
  `eval_fraction` share of the files by a hash of their paths; "official" (GTZAN and FMA
  only) trains on the dataset's own training split and evaluates on its test split, as
  published results are measured, leaving its validation files out (`data.file_splits`).
  """

  name: str = "default"                  # The config file's name (a base's is not inherited).
  description: str = ""

  # Data.
  data_layout: str = "folder"            # One of DATA_LAYOUTS.
  eval_fraction: float = 0.1             # Share of *files* held out for eval.
  split_method: str = "hash"             # One of SPLIT_METHODS: "hash" (at eval_fraction)
                                         # or "official" (the dataset's train/test split).
  clips_per_file: int = 8                # Random crops taken per file visit.
  edge_crop_fraction: float = 0.0        # Share of those crops that are a song's first or
                                         # last clip (half each); the rest start anywhere.
  shuffle_buffer_clips: int = 256       # Clips in the training shuffle buffer.

  # Audio and log-mel front end.
  sample_rate_hz: int = 22050            # Every file is resampled to this rate.
  clip_seconds: float = 4.0              # One latent vector per clip of this length.
  n_fft: int = 1024                      # STFT window and FFT size (samples).
  hop_length: int = 256                  # STFT hop (samples).
  n_mels: int = 80                       # Mel bands (HTK scale, no area normalisation).
  mel_fmin_hz: float = 0.0
  mel_fmax_hz: float = 11025.0
  db_floor: float = -100.0               # Log-mel floor (dB), amin = 1e-10.
  db_center: float = -40.0               # Normalisation: (dB - center) / scale.
  db_scale: float = 40.0                 # dB per unit of the model's log-mel.

  # Model sizes.
  conv_channels: Tuple[int, ...] = (32, 64, 128)  # Filters of each Conv2D block.
  conv_pool_time: Tuple[int, ...] = (2, 2, 2)     # Each block's max-pool over frames...
  conv_pool_freq: Tuple[int, ...] = (2, 2, 2)     # ...and over mel bands.
  encoder_lstm_units: int = 256          # Units of each direction of the encoder's BiLSTM.
  z_size: int = 128                      # Dimensions of the latent vector.
  conductor_lstm_units: int = 256        # The decoder's conductor LSTM.
  conductor_embedding_size: int = 128    # The conductor's output per segment.
  decoder_lstm_units: int = 256          # The core LSTM that emits each segment's frames.
  num_segments: int = 16                 # Conductor steps per clip.

  # Loss.
  free_nats: float = 48.0                # Nats of KL not penalised (MusicVAE's free_bits
                                         # hparam times ln 2).
  max_beta: float = 0.2                  # KL weight reached by the ramp...
  beta_rate: float = 0.99999             # ...beta = max_beta * (1 - beta_rate ** step).

  # Optimisation.
  batch_size: int = 16                   # Clips per step (global: split over replicas).
  learning_rate: float = 1e-3            # Adam's rate at step 0, decaying as min_learning_rate
  min_learning_rate: float = 1e-5        # + (learning_rate - min) * decay_rate ** step.
  decay_rate: float = 0.9999
  clip_norm: float = 1.0                 # Gradients clipped to this global norm.
  seed: int = 0                          # Weights, noise, crops and shuffling.

  # Mel inversion.
  griffin_lim_iters: int = 32            # Default iterations when decoding to audio.
  griffin_lim_momentum: float = 0.99     # Fast Griffin-Lim's alpha (0: the classic one).

  # Training loop.
  checkpoint_every_steps: int = 500      # Steps between checkpoints (a killed run resumes).
  summary_every_steps: int = 50          # Steps between TensorBoard scalars.
  keep_checkpoints: int = 3              # Newest checkpoints kept in run_dir/train.

  def __post_init__(self):
    problems = [f"{field.name}={getattr(self, field.name)} (must be finite)"
                for field in dataclasses.fields(self)
                if isinstance(getattr(self, field.name), float)
                and not math.isfinite(getattr(self, field.name))]
    if problems:  # The checks below would compute with them.
      raise ConfigError(f"config {self.name!r}: invalid " + "; ".join(problems))
    for field in ("sample_rate_hz", "n_fft", "z_size", "encoder_lstm_units",
                  "conductor_lstm_units", "decoder_lstm_units", "conductor_embedding_size",
                  "num_segments", "batch_size", "n_mels", "griffin_lim_iters", "clips_per_file",
                  "shuffle_buffer_clips", "learning_rate", "checkpoint_every_steps", "db_scale",
                  "summary_every_steps", "keep_checkpoints"):
      if getattr(self, field) <= 0:
        problems.append(f"{field}={getattr(self, field)} (must be positive)")
    for field in ("free_nats", "max_beta", "min_learning_rate", "clip_norm"):
      if getattr(self, field) < 0:
        problems.append(f"{field}={getattr(self, field)} (must not be negative)")
    for field in ("decay_rate", "beta_rate"):
      if not 0.0 < getattr(self, field) <= 1.0:
        problems.append(f"{field}={getattr(self, field)} (must be in (0, 1])")
    if self.data_layout not in DATA_LAYOUTS:
      problems.append(f"data_layout={self.data_layout!r} (valid: {', '.join(DATA_LAYOUTS)})")
    if self.split_method not in SPLIT_METHODS:
      problems.append(f"split_method={self.split_method!r} (valid: {', '.join(SPLIT_METHODS)})")
    if not 0.0 <= self.eval_fraction < 1.0:
      problems.append(f"eval_fraction={self.eval_fraction} (must be in [0, 1))")
    if not 0.0 <= self.edge_crop_fraction <= 1.0:
      problems.append(f"edge_crop_fraction={self.edge_crop_fraction} (must be in [0, 1])")
    if self.clip_seconds <= 0 or self.clip_samples < self.n_fft:
      problems.append(f"clip_seconds={self.clip_seconds} (a clip must hold at least n_fft samples)")
    if self.hop_length <= 0 or self.hop_length > self.n_fft:
      problems.append(f"hop_length={self.hop_length} (must be in [1, n_fft])")
    if self.mel_fmax_hz > self.sample_rate_hz / 2:
      problems.append(f"mel_fmax_hz={self.mel_fmax_hz} (above Nyquist {self.sample_rate_hz / 2})")
    if not 0.0 <= self.mel_fmin_hz < self.mel_fmax_hz:
      problems.append(f"mel_fmin_hz={self.mel_fmin_hz} (must be in [0, mel_fmax_hz="
                      f"{self.mel_fmax_hz}))")
    if not (len(self.conv_channels) == len(self.conv_pool_time) == len(self.conv_pool_freq)):
      problems.append("conv_channels, conv_pool_time and conv_pool_freq must have equal lengths")
    if not problems and self.num_segments > self.num_frames:  # num_frames needs a valid hop.
      problems.append(f"num_segments={self.num_segments} (more than the {self.num_frames} "
                      "frames of a clip)")
    if problems:
      raise ConfigError(f"config {self.name!r}: invalid " + "; ".join(problems))

  @property
  def clip_samples(self) -> int:
    """Samples in one model clip at `sample_rate_hz`."""
    return int(round(self.clip_seconds * self.sample_rate_hz))

  @property
  def num_frames(self) -> int:
    """Log-mel frames of one clip (centred STFT: 1 + samples // hop)."""
    return 1 + self.clip_samples // self.hop_length

  @property
  def frames_per_segment(self) -> int:
    """Frames each conductor segment emits; the last segment's tail is cropped."""
    return -(-self.num_frames // self.num_segments)

  def to_dict(self) -> dict:
    return dataclasses.asdict(self)

  def to_json(self) -> str:
    return json.dumps(self.to_dict(), indent=2, sort_keys=True)

  @classmethod
  def from_dict(cls, values: Mapping[str, Any]) -> "Config":
    return override(cls(), values)


# The settings that define what the model hears: weights learned with other values
# see other log-mels (a warm start must keep them; model sizes are checked by shape).
FRONT_END_FIELDS = ("sample_rate_hz", "clip_seconds", "n_fft", "hop_length", "n_mels",
                    "mel_fmin_hz", "mel_fmax_hz", "db_floor", "db_center", "db_scale")


def differing_fields(first: Config, second: Config) -> List[str]:
  """Sorted names of the settings in which two configs differ, their labels (name,
  description) aside: what makes a checkpoint of one unusable as the other."""
  second_values = second.to_dict()
  return sorted(k for k, v in first.to_dict().items()
                if k not in ("name", "description") and second_values[k] != v)


def _field_types() -> dict:
  return {f.name: f for f in dataclasses.fields(Config)}


def _whole_number(value: Any) -> int:
  """int(value) for 3, 3.0 or '3'; ValueError for 3.7, '3.7' or True (not silently 3)."""
  if isinstance(value, bool):
    raise ValueError(value)
  as_float = float(value)
  if as_float != int(as_float):
    raise ValueError(value)
  return int(as_float)


def _coerce(name: str, value: Any) -> Any:
  """Converts `value` (JSON value or flag string) to the type of field `name`."""
  field = _field_types()[name]
  default = field.default
  try:
    if isinstance(default, tuple):
      if isinstance(value, str):
        value = [v for v in value.replace(";", ":").split(":") if v]
      return tuple(_whole_number(v) for v in value)
    if isinstance(default, bool):
      if isinstance(value, str):
        if value.lower() not in ("true", "false", "1", "0"):
          raise ValueError(value)
        return value.lower() in ("true", "1")
      return bool(value)
    if isinstance(default, int):
      return _whole_number(value)
    if isinstance(default, float):
      return float(value)
    return str(value)
  except (TypeError, ValueError, OverflowError):  # int(float("inf")) overflows.
    raise ConfigError(
        f"bad value {value!r} for hparam {name!r}: expected {type(default).__name__}"
        + (" (a list of ints separated by ':')" if isinstance(default, tuple) else "")) from None


def _renamed(values: Mapping[str, Any]) -> dict:
  """`values` with renamed fields under their new names (configs saved before a rename
  still load); an old name beside its new one is left to fail as unknown."""
  values = dict(values)
  for old, new in RENAMED_FIELDS.items():
    if old in values and new not in values:
      values[new] = values.pop(old)
  return values


def override(config: Config, values: Mapping[str, Any]) -> Config:
  """Returns `config` with `values` replaced, validating names and types."""
  fields = _field_types()
  values = _renamed(values)
  unknown = sorted(set(values) - set(fields))
  if unknown:
    raise ConfigError(f"unknown hparam(s) {', '.join(unknown)}; "
                      f"valid names: {', '.join(sorted(fields))}")
  return dataclasses.replace(config, **{k: _coerce(k, v) for k, v in values.items()})


def parse_hparams(hparams: str) -> dict:
  """Parses 'a=1,b=2:3' (music_vae_train's --hparams) into {'a': '1', 'b': '2:3'}."""
  result = {}
  for item in filter(None, (part.strip() for part in (hparams or "").split(","))):
    if "=" not in item:
      raise ConfigError(f"bad --hparams item {item!r}: expected name=value")
    name, value = item.split("=", 1)
    result[name.strip()] = value.strip()
  return result


def configs_dir() -> Path:
  """The folder of named JSON configs: the repository's `configs/`, or its installed copy."""
  candidates = [Path(__file__).resolve().parent.parent / "configs",
                Path(sys.prefix) / "share" / "wave_music_vae" / "configs"]
  for candidate in candidates:
    if candidate.is_dir():
      return candidate
  return candidates[0]


def available_configs(directory: Optional[Path] = None) -> list:
  directory = Path(directory or configs_dir())
  return sorted(p.stem for p in directory.glob("*.json"))


def _read_json(path: Path) -> dict:
  """The JSON object in config file `path`; ConfigError naming it for anything else."""
  try:
    data = json.loads(path.read_text())
  except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
    raise ConfigError(f"cannot read config file {path}: {e}") from None
  if not isinstance(data, dict):
    raise ConfigError(f"config file {path}: expected a JSON object of hparams, "
                      f"got a JSON {type(data).__name__}")
  base = data.get("base")
  if base is not None and not (isinstance(base, str) and base):
    raise ConfigError(f"config file {path}: 'base' must name a config, got {base!r}")
  return data


def load_config(name_or_path: str, hparams: Optional[Mapping[str, Any]] = None,
                directory: Optional[Path] = None) -> Config:
  """Loads a named config (or a JSON file path), resolving `base` chains, then `hparams`.

  Each file's values override its base's. The name is the named file's own `name`, or
  its file name: never a base's (a config derived from a run's saved config.json is not
  that run's config).
  """
  directory = Path(directory or configs_dir())
  seen = []
  values: dict = {}
  current = name_or_path
  while current:
    path = (paths.as_path(current) if current.endswith(".json") or os.sep in current
            or paths.is_remote(current) else directory / f"{current}.json")
    if not path.is_file():
      raise ConfigError(f"unknown config {current!r}; "
                        f"valid configs: {', '.join(available_configs(directory))}")
    if path in seen:
      raise ConfigError(f"config {name_or_path!r}: circular 'base' chain through {path}")
    seen.append(path)
    data = _renamed(_read_json(path))
    current = data.pop("base", None)
    if len(seen) > 1:
      data.pop("name", None)
    values = {**data, **values}
  values.setdefault("name", Path(name_or_path).stem)
  config = override(Config(), values)
  return override(config, hparams or {})


def save_config(config: Config, path) -> None:
  """Writes `config` as JSON, atomically (temp file, then rename), locally or remotely."""
  paths.write_text_atomically(path, config.to_json())
