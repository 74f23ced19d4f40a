"""The training loop: non-finite steps never touch the weights; checkpoints; run_dir checks."""

import dataclasses
import logging
import os
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from wave_music_vae import config as config_lib
from wave_music_vae import data
from wave_music_vae import losses
from wave_music_vae import training
from wave_music_vae.model import WaveMusicVAE, model_variables

from conftest import synth_song


def _clips(config, n=None):
  n = n or config.batch_size
  return np.stack([synth_song(config.clip_seconds, seed=i) for i in range(n)])


def test_nonfinite_step_is_skipped_and_counted(tiny_config, tmp_path):
  trainer = training.Trainer(tiny_config, tmp_path, max_consecutive_nonfinite=3)
  good = tf.data.Dataset.from_tensors({"audio": _clips(tiny_config)})
  trainer.train(good.repeat(), 2, progress=False)
  before = [w.copy() for w in trainer.model.get_weights()]
  bad = _clips(tiny_config)
  bad[0, 100] = np.nan
  summary = trainer.train(
      tf.data.Dataset.from_tensors({"audio": bad}).concatenate(good).repeat(), 4, progress=False)
  assert summary.nonfinite_steps == 1 and summary.end_step == 4
  # The schedule's step follows the run's past the skipped step: Adam applies the rate
  # that TensorBoard logs.
  applied = float(keras.ops.convert_to_numpy(trainer.optimizer.learning_rate))
  assert applied == pytest.approx(float(trainer.learning_rate(4)), rel=1e-6)
  after_bad = trainer.model.get_weights()
  assert any(not np.array_equal(a, b) for a, b in zip(before, after_bad))  # the good step applied
  assert all(np.all(np.isfinite(w)) for w in after_bad)
  # Only bad batches: the weights never change and the run stops with a clear message.
  frozen = [w.copy() for w in trainer.model.get_weights()]
  with pytest.raises(training.TrainingError, match="3 steps in a row had a NaN/Inf loss"):
    trainer.train(tf.data.Dataset.from_tensors({"audio": bad}).repeat(), 100, progress=False)
  for a, b in zip(frozen, trainer.model.get_weights()):
    np.testing.assert_array_equal(a, b)


def test_reported_beta_is_the_one_the_step_s_loss_used(tiny_config, tmp_path):
  """The third step (step counter 2 while its loss is computed) reports beta(2)."""
  trainer = training.Trainer(tiny_config, tmp_path)
  dataset = tf.data.Dataset.from_tensors({"audio": _clips(tiny_config)}).repeat()
  summary = trainer.train(dataset, 3, progress=False)
  expected = float(losses.beta(2, tiny_config.max_beta, tiny_config.beta_rate))
  assert summary.last_losses["beta"] == pytest.approx(expected, rel=1e-5)


def test_data_that_gives_no_clips_is_a_training_error(tiny_config, tmp_path):
  trainer = training.Trainer(tiny_config, tmp_path)
  empty = tf.data.Dataset.from_tensors({"audio": _clips(tiny_config)}).take(0)
  with pytest.raises(training.TrainingError, match="the training data gave no clips"):
    trainer.train(empty, 5, progress=False)


def test_mixed_precision_is_this_trainer_s_only(tiny_config, tmp_path):
  """The float16 policy goes to the trainer's model, not to models made after it."""
  trainer = training.Trainer(tiny_config, tmp_path, mixed_precision=True)
  assert trainer.model.dtype_policy.name == "mixed_float16"
  assert WaveMusicVAE(tiny_config).dtype_policy.name == "float32"


def test_checkpoint_restores_exact_step_and_weights(tiny_config, tmp_path):
  dataset = tf.data.Dataset.from_tensors({"audio": _clips(tiny_config)}).repeat()
  trainer = training.Trainer(tiny_config, tmp_path)
  trainer.train(dataset, 5, progress=False)
  resumed = training.Trainer(tiny_config, tmp_path)
  assert resumed.restore() == 5
  for a, b in zip(trainer.model.get_weights(), resumed.model.get_weights()):
    np.testing.assert_array_equal(a, b)
  assert int(resumed.optimizer.iterations.numpy()) == int(trainer.optimizer.iterations.numpy())


def _noise_state(trainer):
  return trainer.model.sampling.seed_generator.state.numpy().tolist()


def test_a_resumed_run_draws_the_noise_its_run_would_have_drawn_next(tiny_config, tmp_path):
  """The Sampling layer's noise state is checkpointed (**was**: left out with
  `model.weights`, so every resume drew step 1's noise again)."""
  dataset = tf.data.Dataset.from_tensors({"audio": _clips(tiny_config)}).repeat()
  trainer = training.Trainer(tiny_config, tmp_path / "run")
  fresh = _noise_state(trainer)
  trainer.train(dataset, 3, progress=False)
  assert _noise_state(trainer) != fresh
  resumed = training.Trainer(tiny_config, tmp_path / "run")
  assert resumed.restore() == 3
  assert _noise_state(resumed) == _noise_state(trainer)
  # A checkpoint from before the noise state was kept still restores, and its run is
  # reseeded from its step rather than drawing its first steps' noise again.
  legacy = tf.train.Checkpoint(model=model_variables(trainer.model),
                               optimizer=trainer.optimizer, step=trainer.step,
                               nonfinite_steps=trainer.nonfinite_steps)
  tf.train.CheckpointManager(legacy, str(tmp_path / "older" / "train"), max_to_keep=5,
                             step_counter=trainer.step).save(checkpoint_number=3)
  older = training.Trainer(tiny_config, tmp_path / "older")
  assert older.restore() == 3
  assert _noise_state(older) == [tiny_config.seed + 3, 0]
  for a, b in zip(trainer.model.get_weights(), older.model.get_weights()):
    np.testing.assert_array_equal(a, b)


def test_a_warm_start_draws_other_noise_than_a_fresh_run(tiny_config, tmp_path):
  """A warm start seeds the Sampling layer's noise from its step, as a resume without a noise
  state is (**was**: left at [seed, 0], the noise of every fresh run's first steps)."""
  source = training.Trainer(tiny_config, tmp_path / "source")
  fresh = training.Trainer(tiny_config, tmp_path / "fresh")
  warm = training.Trainer(tiny_config, tmp_path / "warm")
  assert _noise_state(warm) == _noise_state(fresh) == [tiny_config.seed, 0]
  warm.warm_start(source.model, source_steps=40)
  assert _noise_state(warm) == [tiny_config.seed + 40, 0]
  mu, sigma = tf.zeros([2, tiny_config.z_size]), tf.ones([2, tiny_config.z_size])
  assert not np.allclose(warm.model.sampling([mu, sigma]), fresh.model.sampling([mu, sigma]))
  # Checkpointed with the run, as its own noise state.
  warm.save()
  resumed = training.Trainer(tiny_config, tmp_path / "warm")
  assert resumed.restore() == 40 and _noise_state(resumed) == _noise_state(warm)


def test_a_resumed_run_is_seeded_from_its_step(song_folder, tiny_config):
  """A fresh run is seeded as before; a resumed one draws other crops and shuffles than its
  first steps (**was**: every start rebuilt the data from config.seed, replaying step 1)."""
  source = data.DatasetSource(str(song_folder), "folder")

  def first_batches(config):
    """The songs of the first 24 clips, in order (which song each crop comes from is
    seeded; where in a song is not reproducible, crops being drawn in parallel)."""
    return [s.decode() for b in source.dataset(config, "train", with_source=True).take(6)
            for s in b["source"].numpy()]

  training.seed_everything(tiny_config.seed)
  reference = first_batches(tiny_config)
  assert training.seed_run(tiny_config) is tiny_config
  assert first_batches(tiny_config) == reference
  resumed_config = training.seed_run(tiny_config, 25)
  assert resumed_config == dataclasses.replace(tiny_config, seed=tiny_config.seed + 25)
  resumed = first_batches(resumed_config)
  assert resumed != reference
  training.seed_run(tiny_config, 25)
  assert first_batches(resumed_config) == resumed  # still deterministic


def test_run_dir_with_another_config_is_refused_once_it_has_a_checkpoint(tiny_config, tmp_path):
  training.prepare_run_dir(tmp_path, tiny_config)
  training.prepare_run_dir(tmp_path, tiny_config)  # same config: fine
  # No checkpoint yet (a run killed before its first): the new config replaces the old.
  smaller_batch = config_lib.override(tiny_config, {"batch_size": 2})
  training.prepare_run_dir(tmp_path, smaller_batch)
  assert config_lib.load_config(str(tmp_path / "config.json")).batch_size == 2
  training.Trainer(smaller_batch, tmp_path).save()
  other = config_lib.override(smaller_batch, {"z_size": 4})
  with pytest.raises(training.TrainingError, match="differs in z_size"):
    training.prepare_run_dir(tmp_path, other)
  assert config_lib.load_config(str(tmp_path / "config.json")).z_size == tiny_config.z_size


def test_a_lost_checkpoint_state_does_not_let_another_config_replace_the_run_s(tiny_config,
                                                                              tmp_path):
  """ckpt-N files without their `checkpoint` state file are still checkpoints (**was**: the
  library call saw none, replaced config.json and skipped the precision check; only the
  CLI was safe, its Trainer repairing the state first)."""
  training.prepare_run_dir(tmp_path, tiny_config)
  training.Trainer(tiny_config, tmp_path).save()
  (tmp_path / "train" / "checkpoint").unlink()
  with pytest.raises(training.TrainingError, match="differs in z_size"):
    training.prepare_run_dir(tmp_path, config_lib.override(tiny_config, {"z_size": 4}))
  assert config_lib.load_config(str(tmp_path / "config.json")) == tiny_config
  (tmp_path / "train" / "checkpoint").write_text("garbled {")
  with pytest.raises(training.TrainingError, match="was trained without --mixed_precision"):
    training.prepare_run_dir(tmp_path, tiny_config, mixed_precision=True)
  assert tf.train.latest_checkpoint(str(tmp_path / "train")).endswith("ckpt-0")  # repaired


def test_an_eval_checks_the_precision_but_records_none(tiny_config, tmp_path):
  """--mode=eval (training=False) is refused a precision its run was not trained with, and
  writes no train_options.json (**was**: written by an eval too)."""
  training.prepare_run_dir(tmp_path, tiny_config, training=False)
  assert not (tmp_path / training.TRAIN_OPTIONS_FILE).exists()
  training.prepare_run_dir(tmp_path, tiny_config, mixed_precision=True)
  training.Trainer(tiny_config, tmp_path, mixed_precision=True).save()
  (tmp_path / training.TRAIN_OPTIONS_FILE).unlink()  # A run from before the file was written.
  with pytest.raises(training.TrainingError, match="was trained with --mixed_precision"):
    training.prepare_run_dir(tmp_path, tiny_config, training=False)
  training.prepare_run_dir(tmp_path, tiny_config, mixed_precision=True, training=False)
  assert not (tmp_path / training.TRAIN_OPTIONS_FILE).exists()
  training.prepare_run_dir(tmp_path, tiny_config, mixed_precision=True)
  assert (tmp_path / training.TRAIN_OPTIONS_FILE).read_text() == '{"mixed_precision": true}'


@pytest.mark.parametrize("mixed_precision", [False, True], ids=["float32", "mixed_float16"])
def test_the_optimizer_s_config_has_the_schedule_and_no_lambda(tiny_config, tmp_path,
                                                               mixed_precision, recwarn):
  """**was**: a lambda capturing the Trainer as the learning rate, which `get_config` marshalled
  with Keras' "unsafe lambda" warning."""
  trainer = training.Trainer(tiny_config, tmp_path, mixed_precision=mixed_precision)
  config = trainer.optimizer.get_config()
  assert not [str(w.message) for w in recwarn.list], [str(w.message) for w in recwarn.list]
  adam = config["inner_optimizer"]["config"] if mixed_precision else config
  schedule = adam["learning_rate"]["config"]["schedule"]
  assert schedule["registered_name"] == "wave_music_vae>MusicVaeLearningRate"
  assert schedule["config"] == trainer.learning_rate.get_config()
  trainer.step.assign(7)  # The rate Adam applies follows the step.
  assert float(keras.ops.convert_to_numpy(trainer.optimizer.learning_rate)) == pytest.approx(
      float(trainer.learning_rate(7)), rel=1e-6)


def test_learning_rate_schedule_decays_to_its_floor():
  schedule = training.MusicVaeLearningRate(1e-3, 1e-5, 0.9)
  assert float(schedule(0)) == pytest.approx(1e-3)
  assert float(schedule(1000)) == pytest.approx(1e-5)
  assert training.MusicVaeLearningRate(**schedule.get_config()).get_config() == schedule.get_config()


@pytest.mark.parametrize("mixed_precision", [False, True], ids=["float32", "mixed_float16"])
def test_warm_start_copies_every_weight_and_the_step(tiny_config, tmp_path, mixed_precision):
  source = training.Trainer(tiny_config, tmp_path / "source")
  source.train(tf.data.Dataset.from_tensors({"audio": _clips(tiny_config)}).repeat(), 3,
               progress=False)
  config = dataclasses.replace(tiny_config, decay_rate=0.5)  # a decay that shows in 3 steps
  fresh = training.Trainer(config, tmp_path / "fresh", mixed_precision=mixed_precision)
  assert any(not np.array_equal(a, b)
             for a, b in zip(source.model.get_weights(), fresh.model.get_weights()))
  fresh.warm_start(source.model, source_steps=3)
  assert int(fresh.step.numpy()) == 3
  # Adam counts its own updates: none yet, whatever step the schedule is at.
  adam = getattr(fresh.optimizer, "inner_optimizer", fresh.optimizer)
  assert int(adam.iterations.numpy()) == 0
  # The rate Adam applies is the schedule's at the copied step, not at step 0.
  applied = float(keras.ops.convert_to_numpy(fresh.optimizer.learning_rate))
  assert applied == pytest.approx(float(fresh.learning_rate(3)), rel=1e-6)
  assert applied < 0.2 * config.learning_rate
  for a, b in zip(source.model.get_weights(), fresh.model.get_weights()):
    np.testing.assert_array_equal(a, b)
  audio = _clips(tiny_config)
  np.testing.assert_allclose(fresh.model.encode(audio)[1], source.model.encode(audio)[1],
                             rtol=1e-5, atol=5e-3 if mixed_precision else 1e-6)


def _update_sizes(trainer, batches):
  """max |weight change| / scheduled learning rate of each train step over `batches`."""
  train_step = trainer._build_train_step(trainer.config.batch_size)
  sizes = []
  for batch in batches:
    rate = float(trainer.learning_rate(trainer.step))
    before = [v.numpy() for v in trainer.model.trainable_variables]
    train_step(batch)
    sizes.append(max(float(np.max(np.abs(v.numpy() - b)))
                     for v, b in zip(trainer.model.trainable_variables, before)) / rate)
  return sizes


def test_updates_after_a_warm_start_keep_to_the_scheduled_rate(tiny_config, tmp_path):
  """Adam's first updates after a warm start at step 20000 move weights by at most the
  scheduled rate, as a run's first updates from step 0 do (**was**: 3.2x, 4.3x, ... up to
  7x for hundreds of steps: Adam's step count was set to 20000, which switched off the
  bias correction of its fresh moments)."""
  source = training.Trainer(tiny_config, tmp_path / "source")
  batches = [{"audio": _clips(tiny_config)[:, ::-1].copy() * (0.5 + i)} for i in range(3)]
  from_zero = training.Trainer(tiny_config, tmp_path / "zero")
  from_zero.warm_start(source.model, 0)
  warm = training.Trainer(tiny_config, tmp_path / "warm")
  warm.warm_start(source.model, 20000)
  applied = float(keras.ops.convert_to_numpy(warm.optimizer.learning_rate))
  assert applied == pytest.approx(float(warm.learning_rate(20000)), rel=1e-6)
  for sizes in (_update_sizes(from_zero, batches), _update_sizes(warm, batches)):
    assert all(0.3 < size < 1.05 for size in sizes), sizes
  assert int(warm.optimizer.iterations.numpy()) == 3 and int(warm.step.numpy()) == 20003


def test_warm_start_from_another_architecture_names_the_first_mismatch(tiny_config, tmp_path):
  wider = training.Trainer(config_lib.override(tiny_config, {"z_size": 16}), tmp_path / "wider")
  trainer = training.Trainer(tiny_config, tmp_path / "run")
  with pytest.raises(training.TrainingError, match=r"warm-start model's .* has shape .*16"):
    trainer.warm_start(wider.model)
  assert int(trainer.step.numpy()) == 0
  # Same shapes, other log-mels: the weights would be read with another meaning.
  louder = training.Trainer(config_lib.override(tiny_config, {"db_center": 0.0, "db_scale": 10.0}),
                            tmp_path / "louder")
  before = trainer.model.get_weights()
  with pytest.raises(training.TrainingError) as error:
    trainer.warm_start(louder.model)
  assert str(error.value) == (
      f"the warm-start model hears other audio: db_center=0.0 (this config: "
      f"{tiny_config.db_center}), db_scale=10.0 (this config: {tiny_config.db_scale}); its "
      "weights were learned on other log-mels")
  assert all(np.array_equal(a, b) for a, b in zip(before, trainer.model.get_weights()))
  assert not all(np.array_equal(a, b) for a, b in zip(before, louder.model.get_weights()))


def test_a_damaged_checkpoint_is_passed_over_for_the_one_before(tiny_config, tmp_path):
  clips = tf.data.Dataset.from_tensors({"audio": _clips(tiny_config)}).repeat()
  first = training.Trainer(tiny_config, tmp_path)
  first.train(clips, 2, progress=False)
  first.train(clips, 4, progress=False)
  assert first.latest_checkpoint().endswith("ckpt-4")
  (tmp_path / "train" / "ckpt-4.index").write_bytes(b"")       # truncated on disk
  assert training.Trainer(tiny_config, tmp_path).restore() == 2
  (tmp_path / "train" / "checkpoint").write_text("garbled {")   # the state file too
  resumed = training.Trainer(tiny_config, tmp_path)              # repairs it
  assert resumed.restore() == 2
  state = tf.train.get_checkpoint_state(str(tmp_path / "train"))
  assert [Path(p).name for p in state.all_model_checkpoint_paths] == ["ckpt-2", "ckpt-4"]
  (tmp_path / "train" / "checkpoint").unlink()                  # deleted: rebuilt as well
  assert training.Trainer(tiny_config, tmp_path).restore() == 2
  (tmp_path / "train" / "ckpt-2.index").write_bytes(b"")
  with pytest.raises(training.TrainingError) as error:
    training.Trainer(tiny_config, tmp_path).restore()
  assert str(error.value) == (f"{tmp_path / 'train'}: every checkpoint is damaged (ckpt-4, "
                              "ckpt-2); start a new --run_dir")


def test_a_truncated_data_file_is_passed_over_for_the_checkpoint_before(tiny_config, tmp_path,
                                                                        caplog):
  """**was**: `IndexError: Read less bytes than requested`, and no resume."""
  clips = tf.data.Dataset.from_tensors({"audio": _clips(tiny_config)}).repeat()
  first = training.Trainer(tiny_config, tmp_path)
  first.train(clips, 2, progress=False)
  first.train(clips, 4, progress=False)
  data_file = tmp_path / "train" / "ckpt-4.data-00000-of-00001"
  os.truncate(data_file, data_file.stat().st_size // 2)
  with caplog.at_level(logging.WARNING):
    assert training.Trainer(tiny_config, tmp_path).restore() == 2
  assert any(f"{tmp_path / 'train' / 'ckpt-4'}: a damaged checkpoint, passed over" in
             r.getMessage() for r in caplog.records)


def test_the_checkpoint_step_s_summaries_are_on_disk_with_its_checkpoint(tiny_config, tmp_path):
  """A run killed right after a checkpoint has that step's scalars, audio and mel images in
  TensorBoard (**was**: queued in the summary writer, lost with the process)."""
  config = dataclasses.replace(tiny_config, checkpoint_every_steps=2, summary_every_steps=1)
  trainer = training.Trainer(config, tmp_path)
  build = trainer._build_train_step
  on_disk = {}

  def build_spying(global_batch_size):
    train_step = build(global_batch_size)

    def spying(batch):
      if int(trainer.step.numpy()) == 2:  # Checkpoint 2 written: what would a kill leave?
        for path in (tmp_path / "train").glob("events.out.tfevents.*"):
          for event in tf.compat.v1.train.summary_iterator(str(path)):
            on_disk.setdefault(event.step, set()).update(v.tag for v in event.summary.value)
      return train_step(batch)
    return spying

  trainer._build_train_step = build_spying
  trainer.train(tf.data.Dataset.from_tensors({"audio": _clips(config)}).repeat(), 3,
                progress=False)
  assert trainer.latest_checkpoint().endswith("ckpt-3")
  assert {"losses/loss", "losses/reconstruction_loss", "beta", "learning_rate",
          "nonfinite_steps", "audio/input", "audio/reconstruction",
          "log_mel/input_vs_reconstruction"} <= on_disk.get(2, set())


def test_a_run_resumes_with_the_precision_it_was_trained_with(tiny_config, tmp_path):
  """**was**: toggling --mixed_precision reported every checkpoint as damaged."""
  training.prepare_run_dir(tmp_path / "mixed", tiny_config, mixed_precision=True)
  training.Trainer(tiny_config, tmp_path / "mixed", mixed_precision=True).save()
  training.prepare_run_dir(tmp_path / "mixed", tiny_config, mixed_precision=True)  # same: fine
  with pytest.raises(training.TrainingError) as error:
    training.prepare_run_dir(tmp_path / "mixed", tiny_config)
  assert str(error.value) == (
      f"{tmp_path / 'mixed'} was trained with --mixed_precision, whose optimizer state its "
      "checkpoints hold; add --mixed_precision to resume or evaluate it, or use a new --run_dir")
  # A run from before train_options.json tells by its checkpoint.
  (tmp_path / "mixed" / training.TRAIN_OPTIONS_FILE).unlink()
  with pytest.raises(training.TrainingError, match="was trained with --mixed_precision"):
    training.prepare_run_dir(tmp_path / "mixed", tiny_config)

  training.prepare_run_dir(tmp_path / "plain", tiny_config)
  training.Trainer(tiny_config, tmp_path / "plain").save()
  with pytest.raises(training.TrainingError) as error:
    training.prepare_run_dir(tmp_path / "plain", tiny_config, mixed_precision=True)
  assert str(error.value) == (
      f"{tmp_path / 'plain'} was trained without --mixed_precision, whose optimizer state its "
      "checkpoints hold; leave out --mixed_precision to resume or evaluate it, or use a new "
      "--run_dir")
  assert training.Trainer(tiny_config, tmp_path / "plain").restore() == 0
  # No checkpoint yet: nothing was trained, and the new setting is taken.
  training.prepare_run_dir(tmp_path / "new", tiny_config)
  training.prepare_run_dir(tmp_path / "new", tiny_config, mixed_precision=True)
  assert (tmp_path / "new" / training.TRAIN_OPTIONS_FILE).read_text() == \
      '{"mixed_precision": true}'


def test_a_run_directory_takes_one_training_process_at_a_time(tmp_path):
  first = training.lock_run_dir(tmp_path / "run")
  with pytest.raises(training.TrainingError) as error:
    training.lock_run_dir(tmp_path / "run")   # a second open file: another claimant
  assert str(error.value) == (f"{tmp_path / 'run'} is in use by another training process "
                              f"(pid {os.getpid()}); wait for it, or use another --run_dir")
  first.close()                                # the process ended: the folder is free again
  training.lock_run_dir(tmp_path / "run").close()


def test_a_remote_run_dir_trains_resumes_and_keeps_its_config(tiny_config, remote_root, caplog):
  """A `scheme://` run directory (TensorFlow's in-memory ram://, standing for gs://) is made,
  trained, resumed, repaired and checked through tf.io.gfile; it cannot be locked, which one
  warning says (**was**: pathlib read gs://b/runs as gs:/b/runs, a local folder named `gs:`)."""
  run_dir = f"{remote_root}/runs/tiny"
  dataset = tf.data.Dataset.from_tensors({"audio": _clips(tiny_config)}).repeat()
  with caplog.at_level(logging.WARNING):
    assert training.lock_run_dir(run_dir) is None
  warnings = [r.getMessage() for r in caplog.records if "run directory" in r.getMessage()]
  assert warnings == [f"{run_dir}: a remote run directory cannot be locked, so concurrent "
                      "training runs in it are not detected (each would write its checkpoints "
                      "there); run one at a time"]
  training.prepare_run_dir(run_dir, tiny_config)
  trainer = training.Trainer(tiny_config, run_dir)
  assert trainer.restore() == 0
  trainer.train(dataset, 2, progress=False)
  assert sorted(tf.io.gfile.listdir(run_dir)) == ["config.json", "train", "train_options.json"]
  assert config_lib.load_config(f"{run_dir}/config.json") == tiny_config
  assert any(name.startswith("events.out.tfevents.")
             for name in tf.io.gfile.listdir(f"{run_dir}/train"))

  training.prepare_run_dir(run_dir, tiny_config)   # the rerun: same config
  resumed = training.Trainer(tiny_config, run_dir)
  assert resumed.restore() == 2
  for a, b in zip(trainer.model.get_weights(), resumed.model.get_weights()):
    np.testing.assert_array_equal(a, b)
  summary = resumed.train(dataset, 3, progress=False)
  assert (summary.start_step, summary.end_step) == (2, 3)
  assert resumed.latest_checkpoint() == f"{run_dir}/train/ckpt-3"
  resumed.evaluate(dataset, max_batches=1)
  assert "eval" in tf.io.gfile.listdir(run_dir)

  with tf.io.gfile.GFile(f"{run_dir}/train/checkpoint", "w") as f:
    f.write("garbled {")                           # repaired from the ckpt-N files there
  assert training.Trainer(tiny_config, run_dir).restore() == 3
  with pytest.raises(training.TrainingError) as error:
    training.prepare_run_dir(run_dir, config_lib.override(tiny_config, {"z_size": 4}))
  assert str(error.value).startswith(f"{run_dir} was trained with config 'tiny', which differs "
                                     "in z_size;")
  assert config_lib.load_config(f"{run_dir}/config.json").z_size == tiny_config.z_size
  assert not tf.io.gfile.glob(f"{run_dir}/*.tmp*")
