"""Loading every checkpoint in checkpoints/, the three ways to name one, and shipping one."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from wave_music_vae import checkpoints, inference, spectral, training
from wave_music_vae import config as config_lib

from conftest import synth_song

SHIPPED = sorted(p for p in checkpoints.checkpoints_root().iterdir()
                 if (p / checkpoints.WEIGHTS_FILE).is_file())


def test_the_default_checkpoint_is_shipped():
  assert checkpoints.default_checkpoint() in SHIPPED


@pytest.mark.parametrize("directory", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_checkpoint_loads_and_reconstructs_a_synthesized_clip(directory):
  backend = inference.load_backend(checkpoint_file=str(directory))
  config = backend.config
  assert config == config_lib.load_config(config.name)  # its config is the named one in configs/
  metadata = json.loads((directory / checkpoints.METADATA_FILE).read_text())
  assert metadata["config"] == config.name and metadata["steps"] > 0
  clip = synth_song(config.clip_seconds, seed=5)[np.newaxis]
  _, mu, _ = backend.encode(clip)
  waveform, log_mel = backend.decode(mu, griffin_lim_iters=8)
  assert waveform.shape == clip.shape and np.all(np.isfinite(waveform))
  mel = spectral.MelSpectrogram.from_config(config)
  true_db = mel.log_mel_db(clip).numpy()
  error_db = float(np.mean(np.abs(mel.denormalize(log_mel) - true_db)))
  # A smoke test, not a quality figure (see checkpoints/README.md): bounded well below a
  # constant spectrogram at the clip's own mean level (about 39 dB on this synthesized
  # clip, which is unlike the music the checkpoint learnt).
  constant_error_db = float(np.mean(np.abs(true_db.mean() - true_db)))
  assert error_db < 0.75 * constant_error_db, (error_db, constant_error_db)
  for name, vector in backend.attributes.items():
    assert vector.shape == (config.z_size,) and np.all(np.isfinite(vector)), name


def test_the_three_ways_to_name_a_checkpoint_agree(trained_run_dir, tmp_path):
  by_run_dir = checkpoints.load(run_dir=str(trained_run_dir))
  prefix = by_run_dir.source
  by_prefix = checkpoints.load(checkpoint_file=prefix)
  shipped_dir = checkpoints.save_shipped(by_run_dir, tmp_path / "shipped",
                                         {"config": "tiny", "steps": 150})
  by_folder = checkpoints.load(checkpoint_file=str(shipped_dir))
  clip = synth_song(1.0, seed=9)[np.newaxis]
  reference = by_run_dir.model.reconstruct(clip).numpy()
  np.testing.assert_array_equal(by_prefix.model.reconstruct(clip).numpy(), reference)
  # Shipped weights are float16: the same model within float16 rounding.
  np.testing.assert_allclose(by_folder.model.reconstruct(clip).numpy(), reference, atol=0.05)
  assert by_folder.config == by_run_dir.config


def test_bad_checkpoint_paths_are_clear(tmp_path, tiny_config):
  with pytest.raises(checkpoints.CheckpointError, match="not a checkpoint"):
    checkpoints.load(checkpoint_file=str(tmp_path))
  with pytest.raises(checkpoints.CheckpointError, match="no checkpoint in"):
    checkpoints.load(run_dir=str(tmp_path))
  with pytest.raises(checkpoints.CheckpointError, match="give only one"):
    checkpoints.load(checkpoint_file="a", run_dir="b")


def test_attribute_vectors_of_other_weights_are_flagged(tmp_path, caplog):
  """attributes.json records the step of the model that made it; loading weights of another
  step says so (the latent space moves as training goes on), and still uses the vectors."""
  vectors = {"jazz": np.ones(3, np.float32)}
  checkpoints.save_attributes(tmp_path, vectors, {"jazz": 4}, step=20)
  assert json.loads((tmp_path / "attributes.json").read_text())["step"] == 20
  with caplog.at_level("WARNING"):
    loaded = checkpoints.load_attributes(tmp_path, 3, steps=20)
  assert not caplog.records
  with caplog.at_level("WARNING"):
    loaded = checkpoints.load_attributes(tmp_path, 3, steps=60)
  assert "computed from the model at step 20; these weights are at step 60" in caplog.text
  np.testing.assert_array_equal(loaded["jazz"], vectors["jazz"])


@pytest.mark.parametrize("vector, cause", [
    ([1.0, 2.0], r"vector 'jazz' has shape \[2\], not the model's z_size of 3"),
    ([[1.0, 2.0, 3.0]], r"vector 'jazz' has shape \[1, 3\], not the model's z_size of 3"),
    ([1.0, float("nan"), 0.0], r"vector 'jazz' holds values that are not finite"),
    ([1.0, 1e39, 0.0], r"vector 'jazz' holds values that are not finite"),  # inf as float32
    (["a", "b", "c"], r"not a readable attributes file")])
def test_attribute_vectors_that_do_not_fit_the_model_are_named(tmp_path, vector, cause):
  """A wrong-length vector failed after the encoding with a TensorFlow shape error; a NaN or
  huge one wrote a silent song, even at amount 0 (inf x 0)."""
  (tmp_path / "attributes.json").write_text(json.dumps({"labels": {"jazz": vector}}))
  with pytest.raises(checkpoints.CheckpointError, match=r"attributes.json: " + cause):
    checkpoints.load_attributes(tmp_path, 3)


def test_the_shipped_attribute_vectors_are_of_the_shipped_weights():
  shipped = checkpoints.default_checkpoint()
  saved = json.loads((shipped / checkpoints.ATTRIBUTES_FILE).read_text())
  metadata = json.loads((shipped / checkpoints.METADATA_FILE).read_text())
  assert saved["step"] == metadata["steps"]


def test_a_remote_run_dir_loads_three_ways_and_ships(tiny_config, remote_root):
  """A run directory on a `scheme://` file system (ram://, standing for gs://): its newest
  checkpoint, config.json and attributes.json are read through tf.io.gfile, named as a run
  directory or a ckpt-N prefix, and it ships to a remote folder, which loads back (**was**: a
  local folder named `ram:`, then `no checkpoint in ram:/...`)."""
  run_dir = f"{remote_root}/runs/tiny"
  training.prepare_run_dir(run_dir, tiny_config)
  trainer = training.Trainer(tiny_config, run_dir)
  clips = np.stack([synth_song(tiny_config.clip_seconds, seed=i)
                    for i in range(tiny_config.batch_size)])
  trainer.train(tf.data.Dataset.from_tensors({"audio": clips}).repeat(), 2, progress=False)
  checkpoints.save_attributes(run_dir, {"jazz": np.ones(tiny_config.z_size, np.float32)},
                              {"jazz": 4}, step=2)

  loaded = checkpoints.load(run_dir=run_dir)
  assert (loaded.source, str(loaded.directory), loaded.steps) == (f"{run_dir}/train/ckpt-2",
                                                                  run_dir, 2)
  assert loaded.config == tiny_config and list(loaded.attributes) == ["jazz"]
  for a, b in zip(trainer.model.get_weights(), loaded.model.get_weights()):
    np.testing.assert_array_equal(a, b)
  assert checkpoints.load(checkpoint_file=loaded.source).source == loaded.source
  assert checkpoints.load(checkpoint_file=run_dir).source == loaded.source

  shipped = checkpoints.package_run(run_dir, f"{remote_root}/shipped/tiny")
  assert sorted(tf.io.gfile.listdir(str(shipped))) == [
      checkpoints.ATTRIBUTES_FILE, "config.json", checkpoints.METADATA_FILE,
      checkpoints.WEIGHTS_FILE]
  by_folder = checkpoints.load(checkpoint_file=str(shipped))
  assert by_folder.steps == 2 and by_folder.config == tiny_config
  assert list(by_folder.attributes) == ["jazz"]
  clip = clips[:1]
  np.testing.assert_allclose(by_folder.model.reconstruct(clip).numpy(),
                             loaded.model.reconstruct(clip).numpy(), atol=0.05)

  empty = f"{remote_root}/runs/empty"
  with pytest.raises(checkpoints.CheckpointError) as error:
    checkpoints.load(run_dir=empty)
  assert str(error.value) == f"{empty}: no checkpoint in {empty}/train"


def test_a_truncated_checkpoint_data_file_is_a_checkpoint_error(tiny_config, tmp_path):
  """**was**: `IndexError: Read less bytes than requested`, not a CheckpointError."""
  training.prepare_run_dir(tmp_path, tiny_config)
  trainer = training.Trainer(tiny_config, tmp_path)
  clips = np.stack([synth_song(tiny_config.clip_seconds, seed=i)
                    for i in range(tiny_config.batch_size)])
  trainer.train(tf.data.Dataset.from_tensors({"audio": clips}).repeat(), 1, progress=False)
  data_file = tmp_path / "train" / "ckpt-1.data-00000-of-00001"
  os.truncate(data_file, data_file.stat().st_size // 2)
  with pytest.raises(checkpoints.CheckpointError) as error:
    checkpoints.load(run_dir=str(tmp_path))
  assert str(error.value).startswith(f"{tmp_path / 'train' / 'ckpt-1'}: cannot restore (")
