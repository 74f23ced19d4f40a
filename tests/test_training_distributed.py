"""The training loop under tf.distribute: MirroredStrategy and MultiWorkerMirroredStrategy.

Each run is a fresh Python process (this file run as a script), because the two
logical CPU devices must be configured before TensorFlow initialises its devices,
and each worker of a multi-worker run is its own process. Every run trains the tiny
config from the same seed on the same fixed batches and saves its weights; the test
compares them with those of the one-device run.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

STEPS = 4
TIMEOUT_SECONDS = 300
# Adam moves each weight by up to ~learning_rate per step (3e-3 here, so ~1e-2 in all);
# a wrongly distributed batch, gradient or loss changes weights by that much, while
# reduction order alone changed them by < 1e-5 when this test was written.
WEIGHT_ATOL = 1e-4


def _fixed_batches(config, steps: int):
  """`steps` batches of [batch_size, clip_samples] distinct synthesized clips, in order."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from conftest import synth_song  # pylint: disable=g-import-not-at-top
  count = config.batch_size * steps
  audio = np.stack([synth_song(config.clip_seconds, config.sample_rate_hz, seed=i,
                               base_hz=110.0 * (1 + i % 4)) for i in range(count)])
  return tf.data.Dataset.from_tensor_slices({"audio": audio, "label": [""] * count}).batch(
      config.batch_size)


def _train_and_save(kind: str, run_dir: str, out_prefix: str) -> None:
  """Trains STEPS steps under strategy `kind`; writes OUT.npz (weights) and OUT.json."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if kind == "mirrored":
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
  from wave_music_vae import config as config_lib  # pylint: disable=g-import-not-at-top
  from wave_music_vae import training  # pylint: disable=g-import-not-at-top
  from wave_music_vae.model import model_variables  # pylint: disable=g-import-not-at-top
  config = config_lib.load_config("tiny")
  training.seed_everything(config.seed)
  if kind == "mirrored":
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
  else:  # one_device: no TF_CONFIG; multi_worker: TF_CONFIG names the cluster.
    strategy = training.choose_strategy()
  trainer = training.Trainer(config, run_dir, strategy)
  initial = {k: v.numpy() for k, v in model_variables(trainer.model).items()}
  summary = trainer.train(_fixed_batches(config, STEPS), STEPS, progress=False)
  final = {k: v.numpy() for k, v in model_variables(trainer.model).items()}
  np.savez(out_prefix + ".npz", **{"initial/" + k: v for k, v in initial.items()},
           **{"final/" + k: v for k, v in final.items()})
  kinds = {"MultiWorkerMirroredStrategy": tf.distribute.MultiWorkerMirroredStrategy,
           "MirroredStrategy": tf.distribute.MirroredStrategy}
  Path(out_prefix + ".json").write_text(json.dumps({
      "strategy": next((name for name, cls in kinds.items() if isinstance(strategy, cls)),
                       type(strategy).__name__),
      "replicas": strategy.num_replicas_in_sync,
      "is_chief": trainer.is_chief, "end_step": summary.end_step,
      "losses": summary.last_losses}))


def _uneven_batches(kind: str, run_dir: str, out_prefix: str) -> None:
  """Trains 2 steps, on 4 clips then on 3 (the last batch of a dataset that does not drop
  it), under MirroredStrategy on two devices ("mirrored_uneven": the 3 clips split 2 + 1)
  or on one ("one_device_uneven"); writes OUT.json: the losses logged at the last step,
  and whether a batch_size of 3 is refused.

  The Sampling layer draws no noise here: a replica takes its rows of noise drawn for
  replicas x its own share, so under unequal shares a clip gets other noise than on one
  device, which would blur the comparison of how the terms are reduced.
  """
  import dataclasses  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if kind == "mirrored_uneven":
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
  from wave_music_vae import config as config_lib  # pylint: disable=g-import-not-at-top
  from wave_music_vae import layers  # pylint: disable=g-import-not-at-top
  from wave_music_vae import training  # pylint: disable=g-import-not-at-top
  layers.Sampling.call = lambda self, inputs: inputs[0]  # z = mu
  config = config_lib.load_config("tiny")
  if kind == "mirrored_uneven":
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
  else:
    strategy = tf.distribute.get_strategy()
  try:
    training.Trainer(dataclasses.replace(config, batch_size=3), run_dir + "_odd", strategy)
    refusal = None
  except training.TrainingError as e:
    refusal = str(e)
  training.seed_everything(config.seed)
  trainer = training.Trainer(config, run_dir, strategy)
  batches = _fixed_batches(config, 2).unbatch().take(7).batch(config.batch_size)
  summary = trainer.train(batches, 2, progress=False)
  Path(out_prefix + ".json").write_text(json.dumps({
      "refusal": refusal, "replicas": strategy.num_replicas_in_sync,
      "losses": summary.last_losses}))


def _command(kind, run_dir, out_prefix):
  return [sys.executable, __file__, kind, str(run_dir), str(out_prefix)]


def _environment(tf_config=None):
  env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
  if tf_config is not None:
    env["TF_CONFIG"] = json.dumps(tf_config)
  return env


def _load(out_prefix):
  weights = np.load(str(out_prefix) + ".npz")
  info = json.loads(Path(str(out_prefix) + ".json").read_text())
  return ({k.split("/", 1)[1]: weights[k] for k in weights.files if k.startswith("initial/")},
          {k.split("/", 1)[1]: weights[k] for k in weights.files if k.startswith("final/")}, info)


def _run(kind, tmp_path):
  result = subprocess.run(_command(kind, tmp_path / "run", tmp_path / kind), env=_environment(),
                          capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  return _load(tmp_path / kind)


def _assert_same_training(reference, other):
  """Same start, weights moved, and `other` ends where `reference` does."""
  (initial_a, final_a, _), (initial_b, final_b, _) = reference, other
  assert initial_a.keys() == final_b.keys()
  for name in initial_a:
    np.testing.assert_array_equal(initial_a[name], initial_b[name], err_msg=name)
  moved = max(np.max(np.abs(final_a[k] - initial_a[k])) for k in final_a)
  assert moved > 1e-3, "training did not move the weights; the comparison would prove nothing"
  for name in final_a:
    np.testing.assert_allclose(final_b[name], final_a[name], rtol=0, atol=WEIGHT_ATOL,
                               err_msg=name)


@pytest.fixture(scope="module")
def one_device_run(tmp_path_factory):
  return _run("one_device", tmp_path_factory.mktemp("one_device"))


def test_mirrored_strategy_on_two_devices_trains_as_one_device(one_device_run, tmp_path):
  mirrored = _run("mirrored", tmp_path)
  info = mirrored[2]
  assert (info["strategy"], info["replicas"]) == ("MirroredStrategy", 2)
  assert one_device_run[2]["replicas"] == 1
  assert info["end_step"] == one_device_run[2]["end_step"] == STEPS
  _assert_same_training(one_device_run, mirrored)
  for name in ("loss", "reconstruction_loss", "kl_loss", "kl_cost", "kl_bits", "log_mel_l1_db"):
    np.testing.assert_allclose(info["losses"][name], one_device_run[2]["losses"][name],
                               rtol=1e-4, err_msg=name)
  assert (tmp_path / "run" / "train" / f"ckpt-{STEPS}.index").exists()


def test_mirrored_strategy_refuses_an_uneven_batch_and_logs_means_over_every_clip(tmp_path):
  """A batch_size that does not split over the replicas is refused in one line (**was**: wrong
  logged losses, or a crash in collective ops with fewer clips than replicas); the logged
  terms are means over the step's clips, however they are shared: those one device logs
  for the same clips and weights (**was**: an unweighted mean of per-replica means, which
  logged reconstruction_loss above loss)."""
  infos = {}
  for kind in ("mirrored_uneven", "one_device_uneven"):
    result = subprocess.run(_command(kind, tmp_path / kind, tmp_path / kind),
                            env=_environment(), capture_output=True, text=True,
                            timeout=TIMEOUT_SECONDS, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    infos[kind] = json.loads((tmp_path / f"{kind}.json").read_text())
  mirrored, one_device = infos["mirrored_uneven"], infos["one_device_uneven"]
  assert (mirrored["replicas"], one_device["replicas"]) == (2, 1)
  assert mirrored["refusal"] == ("batch_size=3 does not split evenly over the 2 replicas of "
                                 "MirroredStrategy; use a multiple of 2 (e.g. "
                                 "--hparams=batch_size=4)")
  assert one_device["refusal"] is None
  # Of the last batch: 3 clips, 2 on one replica and 1 on the other.
  for name in ("loss", "reconstruction_loss", "kl_loss", "kl_cost", "kl_bits", "log_mel_l1_db",
               "beta"):
    np.testing.assert_allclose(mirrored["losses"][name], one_device["losses"][name],
                               rtol=1e-4, err_msg=name)


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


@pytest.mark.slow  # About 70 s on two shared cores: two TensorFlow processes in lockstep.
def test_two_workers_end_with_the_same_weights_as_one_device(one_device_run, tmp_path):
  cluster = {"worker": [f"localhost:{_free_port()}", f"localhost:{_free_port()}"]}
  run_dir = tmp_path / "run"  # Shared, as on a cluster's shared storage.
  workers = []
  try:
    for index in range(2):
      tf_config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
      workers.append(subprocess.Popen(
          _command("multi_worker", run_dir, tmp_path / f"worker{index}"),
          env=_environment(tf_config), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
          text=True))
    errors = [worker.communicate(timeout=TIMEOUT_SECONDS)[1] for worker in workers]
  finally:
    for worker in workers:
      if worker.poll() is None:
        worker.kill()
        worker.wait()
  for worker, error in zip(workers, errors):
    assert worker.returncode == 0, error[-3000:]
  chief, other = _load(tmp_path / "worker0"), _load(tmp_path / "worker1")
  for info in (chief[2], other[2]):
    assert (info["strategy"], info["replicas"]) == ("MultiWorkerMirroredStrategy", 2)
  assert chief[2]["is_chief"] and not other[2]["is_chief"]
  for name in chief[1]:
    np.testing.assert_array_equal(other[1][name], chief[1][name], err_msg=name)
  _assert_same_training(one_device_run, chief)
  # Only the chief's checkpoints land in the shared run_dir.
  assert sorted(p.name for p in run_dir.iterdir()) == ["train"]
  assert (run_dir / "train" / f"ckpt-{STEPS}.index").exists()


if __name__ == "__main__":
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  if sys.argv[1].endswith("_uneven"):
    _uneven_batches(*sys.argv[1:4])
  else:
    _train_and_save(*sys.argv[1:4])
