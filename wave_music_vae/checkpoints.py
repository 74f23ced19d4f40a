"""Finding and loading trained models; writing shipped checkpoints.

Three places a model comes from:
  * a run directory (`--run_dir`): `config.json` + the newest `train/ckpt-N`;
  * a training checkpoint prefix (`--checkpoint_file=RUN/train/ckpt-N`), whose
    config is `RUN/config.json`;
  * a shipped checkpoint folder (`--checkpoint_file=checkpoints/NAME`, the default):
    `config.json`, `model.weights.h5` (float16 where it keeps the folder small),
    `metadata.json` and `attributes.json`.
Attribute vectors (label mean latent - overall mean) live in `attributes.json`
beside the config: `{"labels": {name: [z_size floats]}, "counts": {name: clips}, "step": N}`
(N: the training step of the model that encoded the clips; loading other weights warns).
A run directory or checkpoint may be remote (`gs://...`): its files are read (and
attributes.json written) through `tf.io.gfile` (`paths.as_path`).
"""

import dataclasses
import json
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Dict, Optional

import numpy as np
import tensorflow as tf

from wave_music_vae import config as config_lib
from wave_music_vae import paths
from wave_music_vae.model import CHECKPOINT_READ_ERRORS, WaveMusicVAE, model_variables

DEFAULT_CHECKPOINT = "soundtracks"
WEIGHTS_FILE = "model.weights.h5"
ATTRIBUTES_FILE = "attributes.json"
METADATA_FILE = "metadata.json"
CHECKPOINTS_ENV = "WAVE_MUSIC_VAE_CHECKPOINTS"


class CheckpointError(ValueError):
  """A checkpoint that is missing, unreadable or made with another config."""


@dataclasses.dataclass
class LoadedModel:
  model: WaveMusicVAE
  config: config_lib.Config
  attributes: Dict[str, np.ndarray]
  source: str               # What was loaded, for messages.
  directory: paths.AnyPath  # Where attributes.json lives (run_dir or shipped folder).
  steps: Optional[int] = None  # Training steps behind the weights, where known.


def checkpoints_root() -> Path:
  """Where shipped checkpoints live.

  `$WAVE_MUSIC_VAE_CHECKPOINTS` when set (a shared folder of checkpoints), else the
  repository's `checkpoints/`, else its installed copy under sys.prefix/share.
  """
  if os.environ.get(CHECKPOINTS_ENV):
    return Path(os.environ[CHECKPOINTS_ENV]).expanduser()
  candidates = [Path(__file__).resolve().parent.parent / "checkpoints",
                Path(sys.prefix) / "share" / "wave_music_vae" / "checkpoints"]
  return next((c for c in candidates if c.is_dir()), candidates[0])


def default_checkpoint() -> Path:
  return checkpoints_root() / DEFAULT_CHECKPOINT


def load_attributes(directory, z_size: int, steps: Optional[int] = None
                    ) -> Dict[str, np.ndarray]:
  """{label: vector float32 [z_size]} from `directory`'s attributes.json ({} if it has none).

  Vectors are the model's: when the file says it was computed at another training step
  than `steps` (the weights being loaded), a warning says so, since the latent space
  moves as training goes on; they are still used.

  Raises:
    CheckpointError: the file cannot be read, or a vector is not `z_size` finite numbers
      (added to a song's codes it would fail after the encoding, or give NaN codes and a
      silent song).
  """
  path = paths.as_path(directory) / ATTRIBUTES_FILE
  if not path.is_file():
    return {}
  try:
    saved = json.loads(path.read_text())
    labels = saved["labels"]
    vectors = {str(name): np.asarray(vector, np.float64) for name, vector in labels.items()}
  except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
    raise CheckpointError(f"{path}: not a readable attributes file ({e})") from None
  for name, vector in vectors.items():
    if vector.shape != (z_size,):
      raise CheckpointError(f"{path}: vector {name!r} has shape {list(vector.shape)}, not the "
                            f"model's z_size of {z_size} (recompute it with "
                            "wave_music_vae_attributes)")
    if not np.all(np.abs(vector) <= np.finfo(np.float32).max):  # NaN compares False
      raise CheckpointError(f"{path}: vector {name!r} holds values that are not finite "
                            "float32 numbers (recompute it with wave_music_vae_attributes)")
  if steps is not None and saved.get("step") not in (None, steps):
    logging.warning("%s was computed from the model at step %s; these weights are at step %d: "
                    "recompute it with wave_music_vae_attributes", path, saved["step"], steps)
  return {name: vector.astype(np.float32) for name, vector in vectors.items()}


def save_attributes(directory, vectors: Dict[str, np.ndarray], counts: Dict[str, int],
                    step: Optional[int] = None) -> paths.AnyPath:
  """Writes attributes.json, atomically: the vectors, their clip counts and the training
  step of the model that encoded the clips (None where unknown)."""
  return paths.write_text_atomically(
      paths.as_path(directory) / ATTRIBUTES_FILE,
      json.dumps({"labels": {k: [float(x) for x in v] for k, v in vectors.items()},
                  "counts": {k: int(v) for k, v in counts.items()},
                  "step": step}, indent=1))


def check_same_config(found: config_lib.Config, expected: Optional[config_lib.Config],
                      source: str) -> None:
  """Raises CheckpointError naming the fields where `found` (the checkpoint's) differs."""
  if expected is None:
    return
  differing = config_lib.differing_fields(found, expected)
  if differing:
    shown = ", ".join(f"{k}={getattr(found, k)!r} (not {getattr(expected, k)!r})"
                      for k in differing[:6])
    raise CheckpointError(f"{source} was trained with config {found.name!r}, which differs from "
                          f"the requested {expected.name!r} in {shown}"
                          f"{', ...' if len(differing) > 6 else ''}; pass --config={found.name} "
                          "without --hparams, or leave --config out")


def _build(config: config_lib.Config) -> WaveMusicVAE:
  model = WaveMusicVAE(config)
  model.build()
  return model


def load(checkpoint_file: Optional[str] = None, run_dir: Optional[str] = None,
         config: Optional[config_lib.Config] = None) -> LoadedModel:
  """Loads a model from one of the three places above (the default checkpoint if none).

  `config`, when given, must match the checkpoint's own (model sizes, audio settings).
  """
  if checkpoint_file and run_dir:
    raise CheckpointError("give only one of --checkpoint_file or --run_dir")
  if run_dir:
    run_dir = paths.as_path(run_dir)
    prefix = tf.train.latest_checkpoint(str(run_dir / "train"))
    if not prefix:
      raise CheckpointError(f"{run_dir}: no checkpoint in {run_dir / 'train'}")
    return _load_training_checkpoint(prefix, run_dir, config)
  path = paths.as_path(checkpoint_file) if checkpoint_file else default_checkpoint()
  if path.is_dir() and (path / WEIGHTS_FILE).is_file():
    return _load_shipped(path, config)
  if path.is_dir() and tf.train.latest_checkpoint(str(path / "train")):
    return load(run_dir=str(path), config=config)
  if paths.as_path(str(path) + ".index").is_file():
    return _load_training_checkpoint(str(path), path.parent.parent, config)
  raise CheckpointError(f"{path}: not a checkpoint (expected a shipped folder with "
                        f"{WEIGHTS_FILE}, a run directory, or a ckpt-N prefix)")


def _load_training_checkpoint(prefix: str, run_dir: paths.AnyPath,
                              expected: Optional[config_lib.Config]) -> LoadedModel:
  config_path = run_dir / "config.json"
  if not config_path.is_file():
    raise CheckpointError(f"{prefix}: no config.json in {run_dir}")
  found = config_lib.load_config(str(config_path))
  check_same_config(found, expected, prefix)
  model = _build(found)
  try:
    status = tf.train.Checkpoint(model=model_variables(model)).read(prefix)
    status.expect_partial().assert_existing_objects_matched()
  except CHECKPOINT_READ_ERRORS as e:
    raise CheckpointError(f"{prefix}: cannot restore ({' '.join(str(e).split())[:200]})") from None
  steps = int(prefix.rsplit("-", 1)[1])
  attributes = load_attributes(run_dir, found.z_size, steps)
  return LoadedModel(model, found, attributes, prefix, run_dir, steps=steps)


def _load_shipped(directory: paths.AnyPath, expected: Optional[config_lib.Config]) -> LoadedModel:
  found = config_lib.load_config(str(directory / "config.json"))
  check_same_config(found, expected, str(directory))
  model = _build(found)
  try:
    model.load_weights(str(directory / WEIGHTS_FILE))
  except (OSError, ValueError) as e:
    cause = " ".join(str(e).split())[:200]
    raise CheckpointError(f"{directory / WEIGHTS_FILE}: cannot load ({cause})") from None
  steps = _shipped_steps(directory)
  attributes = load_attributes(directory, found.z_size, steps)
  return LoadedModel(model, found, attributes, str(directory), directory, steps=steps)


def _shipped_steps(directory: paths.AnyPath) -> Optional[int]:
  try:
    return int(json.loads((directory / METADATA_FILE).read_text())["steps"])
  except (OSError, ValueError, KeyError, TypeError):
    return None


def _halve_float_datasets(h5_path: Path) -> None:
  """Rewrites every float32 array of a Keras weights file as float16 (half the bytes).

  HDF5 does not give back the space of a replaced dataset, so the file is copied
  into a new one, groups and attributes included. Keras casts to each variable's
  dtype on load, so such a file loads into a float32 model unchanged.
  """
  import h5py  # pylint: disable=g-import-not-at-top
  halved = h5_path.with_name(h5_path.name + ".f16")

  def copy(source, target):
    target.attrs.update(source.attrs)
    for key, node in source.items():
      if isinstance(node, h5py.Group):
        copy(node, target.create_group(key))
      else:
        values = node[()]
        dataset = target.create_dataset(
            key, data=values.astype(np.float16) if node.dtype == np.float32 else values)
        dataset.attrs.update(node.attrs)

  try:
    with h5py.File(h5_path, "r") as source, h5py.File(halved, "w") as target:
      copy(source, target)
    os.replace(halved, h5_path)
  finally:
    halved.unlink(missing_ok=True)


def save_shipped(loaded: LoadedModel, directory, metadata: dict,
                 float16: bool = True) -> paths.AnyPath:
  """Writes a shipped checkpoint folder: config, weights (float16 if asked), metadata, attributes.

  A remote folder (`gs://...`) is written locally first (h5py writes local files only),
  then uploaded, its weights last (`paths.upload_tree`).
  """
  if isinstance(paths.as_path(directory), paths.RemotePath):
    target = paths.as_path(directory)
    with tempfile.TemporaryDirectory(prefix="wave_music_vae_shipped_") as local:
      save_shipped(loaded, local, metadata, float16)
      paths.upload_tree(Path(local), target, last=(WEIGHTS_FILE,), overwrite=True)
    return target
  directory = Path(directory)
  directory.mkdir(parents=True, exist_ok=True)
  config_lib.save_config(loaded.config, directory / "config.json")
  tmp = directory / (".partial." + WEIGHTS_FILE)
  try:
    loaded.model.save_weights(str(tmp))
    if float16:
      _halve_float_datasets(tmp)
    os.replace(tmp, directory / WEIGHTS_FILE)
  finally:  # A failed save leaves the folder's previous weights and no partial file.
    tmp.unlink(missing_ok=True)
  (directory / METADATA_FILE).write_text(json.dumps(metadata, indent=2, sort_keys=True))
  if loaded.attributes:
    saved = {"counts": {k: 0 for k in loaded.attributes}, "step": None}
    src = paths.as_path(loaded.directory) / ATTRIBUTES_FILE
    if src.is_file():
      saved.update(json.loads(src.read_text()))
    save_attributes(directory, loaded.attributes, saved["counts"], saved["step"])
  return directory


def package_run(run_dir, directory, **metadata) -> paths.AnyPath:
  """Ships a run's newest checkpoint (and its attributes) as a float16 checkpoint folder.

  `metadata` (hardware, data, training time, ...) is stored in metadata.json with
  the config name, step, parameter count and package version.
  """
  from wave_music_vae import __version__  # pylint: disable=g-import-not-at-top
  loaded = load(run_dir=str(run_dir))
  metadata = {"config": loaded.config.name, "steps": loaded.steps,
              "parameters": int(loaded.model.count_params()), "weights_dtype": "float16",
              "package_version": __version__, **metadata}
  return save_shipped(loaded, directory, metadata)
