"""The training loop: any tf.distribute strategy, resumable, summarised, interruptible.

A custom loop rather than `keras.Model.fit`, because fit is not reliable under
`MultiWorkerMirroredStrategy` in Keras 3. The loss of each replica is the sum of
its per-example losses divided by the *global* batch size
(`tf.nn.compute_average_loss`), so gradients summed across replicas equal those
of one device on the whole batch.

Run directory layout (self-describing, as DDSP's and Magenta's):
  run_dir/config.json          the resolved config; eval, export and generate rebuild from it
  run_dir/train_options.json   {"mixed_precision": bool}: how the checkpoints' optimizer was
                               built, which a resume must match; written by training, not
                               by an eval (absent in older runs)
  run_dir/train/ckpt-N.*       tf.train checkpoints (model + optimizer + step + the Sampling
                               layer's noise state), newest kept
  run_dir/train/events.*       TensorBoard: every loss term, beta, learning rate; audio and
                               mel images of reconstructions at each checkpoint
  run_dir/eval/events.*        TensorBoard: eval loss terms
run_dir may be remote (`gs://...`, any file system of `tf.io.gfile`): its files are
read and written through `paths.as_path`, never as a local `gs:` folder.

Checkpoints are written by `tf.train.CheckpointManager`: data files first, then the
`checkpoint` index is replaced atomically, so a run killed at any moment resumes
from the last complete checkpoint at its exact step. SIGINT and SIGTERM write a
checkpoint before the run stops. A resumed run draws other crops, shuffles and noise than
its first steps did (`seed_run`): the seed of a run's data is config.seed + its start step.
The learning rate follows the run's own step (`step`), not Adam's update count, which
counts only this optimizer's updates: 0 after a warm start, so Adam's bias correction
of its fresh moments holds. A step whose loss or gradients are not finite is
skipped (no weight changes) and counted in `nonfinite_steps`, which is checkpointed
too; after `max_consecutive_nonfinite` such steps in a row the run stops with a clear
message rather than spinning.
"""

import contextlib
import dataclasses
import json
import logging
import os
import re
import signal
import tempfile
import time
from typing import Optional

import keras
import numpy as np
import tensorflow as tf

from wave_music_vae import config as config_lib
from wave_music_vae import paths
from wave_music_vae.model import CHECKPOINT_READ_ERRORS, WaveMusicVAE, model_variables

LOSS_KEYS = ("loss", "reconstruction_loss", "kl_loss", "kl_cost", "kl_bits", "log_mel_l1_db")
# The checkpoint key of the Sampling layer's noise state (absent from older checkpoints).
SAMPLING_STATE_KEY = "sampling_state/.ATTRIBUTES/VARIABLE_VALUE"
TRAIN_OPTIONS_FILE = "train_options.json"


class TrainingError(RuntimeError):
  """A run that cannot start or continue (mismatched run_dir, diverged loss, ...)."""


class NoEvalClipsError(TrainingError):
  """The eval dataset gave no clip: its split is empty, or none of its files could be read."""


@keras.saving.register_keras_serializable(package="wave_music_vae")
class MusicVaeLearningRate(keras.optimizers.schedules.LearningRateSchedule):
  """MusicVAE's decay: (learning_rate - min_learning_rate) * decay_rate**step + min.

  The optimizer does not get it as a Keras schedule, which Keras would call at Adam's
  update count: `_ScheduleAtStep` calls it at the run's step. It stays a registered
  schedule so that the optimizer's `get_config` names it, with its settings.
  """

  def __init__(self, learning_rate, min_learning_rate, decay_rate):
    self.learning_rate = learning_rate
    self.min_learning_rate = min_learning_rate
    self.decay_rate = decay_rate

  def __call__(self, step):
    step = tf.cast(step, tf.float32)
    return ((self.learning_rate - self.min_learning_rate) * tf.pow(self.decay_rate, step)
            + self.min_learning_rate)

  def get_config(self):
    return {"learning_rate": self.learning_rate, "min_learning_rate": self.min_learning_rate,
            "decay_rate": self.decay_rate}


class _ScheduleAtStep:
  """The optimizer's learning rate: `schedule` at the run's step, not at Adam's own count.

  Adam's `iterations` counts this optimizer's updates (0 after a warm start, behind the
  step after skipped steps), and its bias correction needs it to. A named callable
  rather than a lambda, so that `optimizer.get_config()` serialises the schedule
  (a lambda is marshalled with a warning). `get_config` describes; it does not
  rebuild: the step is the trainer's variable.
  """

  def __init__(self, schedule: MusicVaeLearningRate, step: tf.Variable):
    self.schedule = schedule
    self.step = step

  def __call__(self):
    return self.schedule(self.step)

  def get_config(self):
    return {"schedule": keras.saving.serialize_keras_object(self.schedule)}


def choose_strategy(tpu: str = "") -> tf.distribute.Strategy:
  """TPU by flag; MultiWorkerMirrored from TF_CONFIG; Mirrored on >1 GPU; else default."""
  if tpu:
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)
  try:
    tf_config = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
  except json.JSONDecodeError as e:
    raise TrainingError(f"TF_CONFIG is not valid JSON: {e}") from None
  if any(tf_config.get("cluster", {}).get(task) for task in ("chief", "worker")):
    return tf.distribute.MultiWorkerMirroredStrategy()
  if len(tf.config.list_logical_devices("GPU")) > 1:
    return tf.distribute.MirroredStrategy()
  return tf.distribute.get_strategy()


def _is_chief(strategy) -> bool:
  resolver = getattr(strategy, "cluster_resolver", None)
  if resolver is None or not resolver.cluster_spec().as_dict():
    return True
  task_type, task_id = resolver.task_type, resolver.task_id
  return task_type in (None, "chief") or (task_type == "worker" and task_id == 0
                                          and "chief" not in resolver.cluster_spec().as_dict())


LOCK_FILE = ".lock"


def lock_run_dir(run_dir):
  """Claims `run_dir` for this process's training; returns the open lock (keep it).

  Two training processes in one run directory would write over each other's
  checkpoints, each reporting success. The lock is an exclusive `flock` on
  `run_dir/.lock`, which the system releases when the process ends, however it
  ends (SIGKILL included), so a killed run never leaves the folder locked.

  A remote run directory (`gs://...`) cannot be locked: object stores have no
  `flock`. It is made, a warning says that concurrent runs in it are not detected,
  and None is returned.

  Raises:
    TrainingError: another process holds the lock; the message gives its pid.
  """
  run_dir = paths.as_path(run_dir)
  run_dir.mkdir(parents=True, exist_ok=True)
  if isinstance(run_dir, paths.RemotePath):
    logging.warning("%s: a remote run directory cannot be locked, so concurrent training runs "
                    "in it are not detected (each would write its checkpoints there); run one "
                    "at a time", run_dir)
    return None
  import fcntl  # pylint: disable=g-import-not-at-top  # POSIX only.
  lock = open(run_dir / LOCK_FILE, "a+", encoding="utf-8")  # pylint: disable=consider-using-with
  try:
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except BlockingIOError:
    lock.seek(0)
    holder = lock.read().strip() or "unknown"
    lock.close()
    raise TrainingError(f"{run_dir} is in use by another training process (pid {holder}); "
                        "wait for it, or use another --run_dir") from None
  lock.truncate(0)
  lock.write(str(os.getpid()))
  lock.flush()
  return lock


def check_batch_size(config: config_lib.Config, strategy: tf.distribute.Strategy) -> None:
  """Raises TrainingError unless `config.batch_size` splits evenly over the replicas.

  Each replica takes its share of every batch: unequal shares are not what one device
  would train on, and a batch with fewer clips than replicas stops the collective ops.
  """
  replicas = strategy.num_replicas_in_sync
  if config.batch_size % replicas:
    raise TrainingError(
        f"batch_size={config.batch_size} does not split evenly over the {replicas} replicas "
        f"of {type(strategy).__name__}; use a multiple of {replicas} (e.g. "
        f"--hparams=batch_size={-(-config.batch_size // replicas) * replicas})")


def _checkpoint_reader(prefix: str):
  # Not tf.train.load_checkpoint, which takes a prefix for a folder on file systems where
  # any prefix of a file name is one (ram://).
  return tf.compat.v1.train.NewCheckpointReader(prefix)


def _latest_checkpoint(run_dir: paths.AnyPath) -> Optional[str]:
  try:
    return tf.train.latest_checkpoint(str(run_dir / "train"))
  except (tf.errors.OpError, ValueError):  # A damaged state file: repaired by the Trainer.
    return None


def _trained_with_mixed_precision(run_dir: paths.AnyPath) -> Optional[bool]:
  """Whether the run's checkpoints were written under --mixed_precision (None: unknown).

  From train_options.json; a run from before it was written tells by its newest
  checkpoint, which holds the loss-scale optimizer's variables if so.
  """
  try:
    return bool(json.loads((run_dir / TRAIN_OPTIONS_FILE).read_text())["mixed_precision"])
  except (OSError, ValueError, KeyError, TypeError, tf.errors.OpError):
    pass
  prefix = _latest_checkpoint(run_dir)
  if not prefix:
    return None
  try:
    return any(name.startswith("optimizer/inner_optimizer/")
               for name in _checkpoint_reader(prefix).get_variable_to_shape_map())
  except (tf.errors.OpError, ValueError):
    return None


def prepare_run_dir(run_dir, config: config_lib.Config, mixed_precision: bool = False,
                    training: bool = True) -> None:
  """Saves the resolved config and the precision in `run_dir`, or checks they match those there.

  A run directory with no checkpoint yet (a run killed before its first, e.g. out
  of memory at a too large batch) takes the new config: nothing was trained with
  the old one. Whether it has one is read from its checkpoint state, repaired first
  if damaged or missing beside ckpt-N files (`_checkpoint_state`), so that a lost
  state file never lets another config replace the one its checkpoints were
  trained with. Mixed precision changes the optimizer the checkpoints hold (a
  loss-scale wrapper around Adam), so a run resumes with the setting it was trained
  with; the setting is recorded (train_options.json) only by `training`: an eval
  (`training=False`) is checked against it but writes none.
  """
  run_dir = paths.as_path(run_dir)
  run_dir.mkdir(parents=True, exist_ok=True)
  saved_path = run_dir / "config.json"
  train_dir = run_dir / "train"
  has_checkpoint = train_dir.is_dir() and _checkpoint_state(train_dir) is not None
  if saved_path.exists():
    saved = config_lib.load_config(str(saved_path))
    differing = config_lib.differing_fields(config, saved)
    if differing and not has_checkpoint:
      logging.warning("%s has no checkpoint yet: its config.json (differing in %s) is replaced",
                      run_dir, ", ".join(differing))
      config_lib.save_config(config, saved_path)
    elif differing:
      raise TrainingError(
          f"{run_dir} was trained with config {saved.name!r}, which differs in "
          f"{', '.join(differing)}; use a new --run_dir or the same --config/--hparams")
  else:
    config_lib.save_config(config, saved_path)
  recorded = _trained_with_mixed_precision(run_dir)
  if has_checkpoint and recorded is not None and recorded != mixed_precision:
    raise TrainingError(
        f"{run_dir} was trained {'with' if recorded else 'without'} --mixed_precision, whose "
        f"optimizer state its checkpoints hold; {'add' if recorded else 'leave out'} "
        "--mixed_precision to resume or evaluate it, or use a new --run_dir")
  options_path = run_dir / TRAIN_OPTIONS_FILE
  if training and (recorded != mixed_precision or not options_path.exists()):
    paths.write_text_atomically(options_path, json.dumps({"mixed_precision": mixed_precision}))


def _checkpoint_state(train_dir: paths.AnyPath):
  """The `checkpoint` state of `train_dir` (None if it has no checkpoint), repaired if need be.

  The state file names the checkpoints. TensorFlow reads an empty one as an error, a
  garbled or missing one as "no checkpoint", which would silently restart the run at
  step 0; so where ckpt-N.index files exist but the state cannot name them, it is
  rewritten from them, oldest first, with a warning. A damaged state file with no
  checkpoint beside it is removed.
  """
  state_file = train_dir / "checkpoint"
  try:
    state = tf.train.get_checkpoint_state(str(train_dir))
    cause = "unreadable" if state_file.exists() else "missing"
  except (tf.errors.OpError, ValueError) as e:
    state, cause = None, f"unreadable: {' '.join(str(e).split())[:200]}"
  if state is not None:
    return state
  steps = sorted(int(match.group(1)) for match in
                 (re.fullmatch(r"ckpt-(\d+)\.index", p.name) for p in train_dir.iterdir())
                 if match)
  if not steps:
    if state_file.exists():
      logging.warning("%s: a damaged checkpoint state and no ckpt-N files; removed", state_file)
      state_file.unlink()
    return None
  prefixes = [str(train_dir / f"ckpt-{step}") for step in steps]
  tf.compat.v1.train.update_checkpoint_state(str(train_dir), prefixes[-1],
                                             all_model_checkpoint_paths=prefixes)
  logging.warning("%s: checkpoint state %s; rewritten from the %d ckpt-N files present",
                  state_file, cause, len(prefixes))
  return tf.train.get_checkpoint_state(str(train_dir))


def _check_same_variables(model, source_model) -> None:
  """Raises TrainingError unless both models have the same variable paths and shapes."""
  ours, theirs = model_variables(model), model_variables(source_model)
  if sorted(ours) != sorted(theirs):
    different = sorted(set(ours) ^ set(theirs))
    raise TrainingError(f"the warm-start model has other layers ({different[0]}, ...)")
  for path, variable in ours.items():
    if tuple(variable.shape) != tuple(theirs[path].shape):
      raise TrainingError(f"the warm-start model's {path} has shape "
                          f"{tuple(theirs[path].shape)}, this config's {tuple(variable.shape)}")


class _StopRequest:
  """Turns SIGINT/SIGTERM into a flag the loop checks after each step."""

  def __init__(self):
    self.signal_name = None

  def __call__(self, signum, frame):
    del frame
    self.signal_name = signal.Signals(signum).name

  @contextlib.contextmanager
  def installed(self):
    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
      try:
        previous[sig] = signal.signal(sig, self)
      except ValueError:  # Not the main thread: leave signals alone.
        pass
    try:
      yield self
    finally:
      for sig, handler in previous.items():
        signal.signal(sig, handler)


@dataclasses.dataclass
class TrainSummary:
  """What a run did, for its final report."""

  start_step: int
  end_step: int
  seconds: float
  examples_per_second: float
  last_losses: dict
  nonfinite_steps: int
  stopped_by: Optional[str] = None


class Trainer:
  """Builds the model and optimizer under a strategy, trains, checkpoints, evaluates."""

  def __init__(self, config: config_lib.Config, run_dir, strategy=None,
               mixed_precision: bool = False, max_consecutive_nonfinite: int = 20):
    self.config = config
    self.run_dir = paths.as_path(run_dir)
    self.strategy = strategy or tf.distribute.get_strategy()
    self.max_consecutive_nonfinite = max_consecutive_nonfinite
    check_batch_size(config, self.strategy)
    self.is_chief = _is_chief(self.strategy)
    # Layers take the global dtype policy when they are made: set it for this model
    # only, and put the caller's back.
    previous_policy = keras.mixed_precision.dtype_policy()
    if mixed_precision:
      keras.mixed_precision.set_dtype_policy("mixed_float16")
    try:
      with self.strategy.scope():
        self.model = WaveMusicVAE(config)
        self.model.build()
    finally:
      keras.mixed_precision.set_dtype_policy(previous_policy)
    with self.strategy.scope():
      self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
      self.nonfinite_steps = tf.Variable(0, dtype=tf.int64, trainable=False,
                                         name="nonfinite_steps")
      self.learning_rate = MusicVaeLearningRate(config.learning_rate, config.min_learning_rate,
                                                config.decay_rate)
      # The schedule is read at the run's step, not at Adam's `iterations` (see
      # `_ScheduleAtStep`).
      optimizer = keras.optimizers.Adam(_ScheduleAtStep(self.learning_rate, self.step),
                                        global_clipnorm=config.clip_norm)
      if mixed_precision:
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
      self.optimizer = optimizer
      self.optimizer.build(self.model.trainable_variables)
    state = dict(model=model_variables(self.model), optimizer=self.optimizer, step=self.step,
                 nonfinite_steps=self.nonfinite_steps)
    self.checkpoint = tf.train.Checkpoint(**state, sampling_state=self._sampling_state())
    self._checkpoint_without_noise = tf.train.Checkpoint(**state)
    checkpoint_dir = self.run_dir / "train"
    if not self.is_chief:
      # Every worker must call save (under MultiWorkerMirroredStrategy saving may run
      # collective ops), but only the chief's copy is kept: the others write to a local
      # scratch folder, deleted with the trainer, not beside the chief's on shared storage.
      self._worker_scratch = tempfile.TemporaryDirectory(
          prefix=f"wave_music_vae_worker{self.strategy.cluster_resolver.task_id}_")
      checkpoint_dir = self._worker_scratch.name
    if self.is_chief and paths.as_path(checkpoint_dir).is_dir():
      # The manager reads the checkpoint state: repaired first if need be.
      _checkpoint_state(paths.as_path(checkpoint_dir))
    self.manager = tf.train.CheckpointManager(self.checkpoint, str(checkpoint_dir),
                                              max_to_keep=config.keep_checkpoints,
                                              step_counter=self.step)
    self._train_step_fn = None

  # -- checkpoints -----------------------------------------------------------------
  def latest_checkpoint(self) -> Optional[str]:
    """The newest checkpoint prefix in run_dir/train, or None (also if its state is unreadable)."""
    return _latest_checkpoint(self.run_dir)

  def restore(self) -> int:
    """Restores the newest readable checkpoint in run_dir/train, if any; returns the step.

    A damaged checkpoint (its files truncated on disk) is passed over with a warning
    naming it, for the one before: a run resumes from what survives.

    Raises:
      TrainingError: every checkpoint the run has is damaged.
    """
    train_dir = self.run_dir / "train"
    state = _checkpoint_state(train_dir) if train_dir.is_dir() else None
    candidates = list(reversed(state.all_model_checkpoint_paths)) if state is not None else []
    for prefix in candidates:
      try:
        # A checkpoint written before the noise state was checkpointed restores without it.
        with_noise = _checkpoint_reader(prefix).has_tensor(SAMPLING_STATE_KEY)
        checkpoint = self.checkpoint if with_noise else self._checkpoint_without_noise
        checkpoint.restore(prefix).assert_existing_objects_matched()
      except CHECKPOINT_READ_ERRORS as e:
        logging.warning("%s: a damaged checkpoint, passed over (%s)", prefix,
                        " ".join(str(e).split())[:200])
        continue
      step = int(self.step.numpy())
      if not with_noise:  # Not the noise of the run's first steps again.
        self._reseed_noise(step)
      logging.info("resumed from %s at step %d", prefix, step)
      return step
    if candidates:
      raise TrainingError(f"{self.run_dir / 'train'}: every checkpoint is damaged "
                          f"({', '.join(paths.as_path(p).name for p in candidates)}); start a new "
                          "--run_dir")
    return int(self.step.numpy())

  def warm_start(self, source_model, source_steps: int = 0) -> None:
    """Starts a fresh run from another model's weights (fine-tuning, or continuing a
    shipped checkpoint whose optimizer state was not kept).

    Every variable is copied by path; the step counter continues from `source_steps`,
    so the learning-rate decay and the KL annealing carry on where the source left
    them, and the Sampling layer's noise is seeded from it as a resume without a noise
    state is (`_reseed_noise`): other noise than a run's first steps, as the CLI's data
    is (`seed_run`). The optimizer starts afresh: zero moments and an update count of
    0, so Adam's bias correction scales its first updates to the scheduled rate (its
    count is not the schedule's step).

    Raises:
      TrainingError: the source's variables differ in name or shape (another
        architecture), or its audio front end differs (`config.FRONT_END_FIELDS`:
        its weights were learned on other log-mels); the message names the first
        mismatch.
    """
    _check_same_variables(self.model, source_model)
    source_config = source_model.config
    front_end = [f"{name}={getattr(source_config, name)} (this config: "
                 f"{getattr(self.config, name)})" for name in config_lib.FRONT_END_FIELDS
                 if getattr(source_config, name) != getattr(self.config, name)]
    if front_end:
      raise TrainingError("the warm-start model hears other audio: " + ", ".join(front_end)
                          + "; its weights were learned on other log-mels")
    ours, theirs = model_variables(self.model), model_variables(source_model)
    for path, variable in ours.items():
      variable.assign(np.asarray(theirs[path].numpy(), dtype=variable.dtype))
    self.step.assign(source_steps)
    self._reseed_noise(source_steps)

  def _sampling_state(self) -> tf.Variable:
    """The Sampling layer's noise state ([seed, draws]), which `model.weights` leaves out."""
    return self.model.sampling.seed_generator.state

  def _reseed_noise(self, step: int) -> None:
    """Seeds the Sampling layer's noise for a run that starts at `step` without a noise
    state of its own: [config.seed + step, 0], as `seed_run` seeds its data."""
    self._sampling_state().assign([self.config.seed + step, 0])

  def save(self) -> str:
    return self.manager.save(checkpoint_number=int(self.step.numpy()))

  # -- steps -----------------------------------------------------------------------
  def _replica_step(self, audio, global_batch_size):
    """One replica's share of a train step: (sums, beta, grads, finite).

    `sums`: each of `LOSS_KEYS` summed over this replica's clips, and `clips`, their
    count (summed over the replicas by the caller, which divides: means over the step's
    clips); `beta`: the KL weight its loss used; `grads`: the gradients summed over all
    replicas; `finite`: whether those and the global loss are all finite.

    Runs in replica context. The gradients are all-reduced here, not inside the
    optimizer, because Keras 3 clips each replica's *local* gradients to
    `global_clipnorm` before it sums them; summed first, the optimizer clips the
    global gradient, as on one device. Every replica then holds the same gradients
    and reaches the same finite verdict.
    """
    with tf.GradientTape() as tape:
      outputs = self.model(audio, training=True)
      terms = self.model.compute_losses(outputs, self.step)
      loss = tf.nn.compute_average_loss(terms["per_example_loss"],
                                        global_batch_size=global_batch_size)
      scaled = (self.optimizer.scale_loss(loss)
                if isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer) else loss)
    context = tf.distribute.get_replica_context()
    grads = context.all_reduce(tf.distribute.ReduceOp.SUM,
                               tape.gradient(scaled, self.model.trainable_variables))
    global_loss = context.all_reduce(tf.distribute.ReduceOp.SUM, loss)
    finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in grads]
                           + [tf.math.is_finite(global_loss)])
    # Each term as a sum over this replica's clips, with their count: summed over the
    # replicas and divided, the logged terms are means over the whole step's clips, as
    # on one device (a mean of per-replica means weighs unequal shares wrongly).
    clips = tf.cast(tf.shape(audio)[0], tf.float32)
    # multiply_no_nan: a replica with no clips (whose means are NaN) adds 0, not NaN.
    sums = {k: tf.math.multiply_no_nan(terms[k], clips) for k in LOSS_KEYS}
    sums["clips"] = clips
    return sums, terms["beta"], grads, finite

  def _build_train_step(self, global_batch_size):
    @tf.function
    def train_step(batch):
      # Batch norm updates its moving statistics in the forward pass: kept aside so a
      # non-finite step can put them back and leave no trace in the model.
      statistics = [tf.identity(v) for v in self.model.non_trainable_variables]
      sums, beta, grads, finite = self.strategy.run(self._replica_step,
                                                    args=(batch["audio"], global_batch_size))
      sums = {k: self.strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
              for k, v in sums.items()}
      reduced = {k: sums[k] / sums["clips"] for k in LOSS_KEYS}
      reduced["beta"] = self.strategy.reduce(tf.distribute.ReduceOp.MEAN, beta, axis=None)
      # The gradients and verdict are the same on every replica: take this worker's first.
      grads = self.strategy.experimental_local_results(grads)[0]
      finite = self.strategy.experimental_local_results(finite)[0]

      def apply():
        # Cross-replica context (a cond around the optimizer's merge_call is only allowed
        # here): the optimizer neither sums again nor clips per replica.
        self.optimizer.apply_gradients(zip(grads, self.model.trainable_variables))
        return tf.constant(0, tf.int64)

      def restore_statistics():
        for variable, value in zip(self.model.non_trainable_variables, statistics):
          variable.assign(value)
        return tf.constant(1, tf.int64)

      def lower_loss_scale():
        # Mixed precision: the loss-scale optimizer sees the overflow itself, skips
        # the update and halves its scale, which is how the scale ever settles.
        self.optimizer.apply_gradients(zip(grads, self.model.trainable_variables))
        return restore_statistics()

      skipped = tf.cond(finite, apply, lower_loss_scale if isinstance(
          self.optimizer, keras.optimizers.LossScaleOptimizer) else restore_statistics)
      self.step.assign_add(1)
      self.nonfinite_steps.assign_add(skipped)
      reduced["skipped"] = skipped
      return reduced
    return train_step

  def eval_step(self, audio):
    outputs = self.model(audio, training=False)
    return self.model.compute_losses(outputs, self.step)

  # -- loops -----------------------------------------------------------------------
  def train(self, dataset: tf.data.Dataset, num_steps: int, progress: bool = True) -> TrainSummary:
    """Trains until the step counter reaches `num_steps` (resuming counts), or a signal."""
    start_step = int(self.step.numpy())
    writer = (tf.summary.create_file_writer(str(self.run_dir / "train")) if self.is_chief
              else tf.summary.create_noop_writer())
    global_batch = self.config.batch_size
    train_step = self._build_train_step(global_batch)
    distributed = iter(self.strategy.experimental_distribute_dataset(dataset))
    bar = keras.utils.Progbar(num_steps, stateful_metrics=list(LOSS_KEYS) + ["beta"],
                              verbose=1 if progress else 0)
    bar.update(start_step)
    stop = _StopRequest()
    started = time.time()
    losses = {}
    consecutive_nonfinite = 0
    with stop.installed(), writer.as_default():
      while int(self.step.numpy()) < num_steps and stop.signal_name is None:
        batch = next(distributed, None)
        if batch is None:
          raise TrainingError("the training data gave no clips: its split is empty or none "
                              "of its files could be read")
        losses = {k: float(v) for k, v in train_step(batch).items()}
        step = int(self.step.numpy())
        consecutive_nonfinite = consecutive_nonfinite + 1 if losses.pop("skipped") else 0
        if consecutive_nonfinite >= self.max_consecutive_nonfinite:
          raise TrainingError(f"{consecutive_nonfinite} steps in a row had a NaN/Inf loss or "
                              f"gradient (last at step {step}); weights were not updated and "
                              "the last checkpoint is intact: lower --hparams=learning_rate")
        bar.update(step, [(k, losses[k]) for k in list(LOSS_KEYS) + ["beta"]])
        if step % self.config.summary_every_steps == 0:
          for name, value in losses.items():
            tf.summary.scalar(f"losses/{name}" if name != "beta" else "beta", value, step=step)
          # What Adam applies at the next update: the schedule at this step.
          tf.summary.scalar("learning_rate", float(keras.ops.convert_to_numpy(
              self.optimizer.learning_rate)), step=step)
          tf.summary.scalar("nonfinite_steps", int(self.nonfinite_steps.numpy()), step=step)
        if step % self.config.checkpoint_every_steps == 0:
          self.save()
          if self.is_chief:
            self._write_media_summaries(batch, step)
          # On disk with the checkpoint: a run killed now resumes here and would never
          # write this step's summaries again.
          writer.flush()
      if int(self.step.numpy()) > start_step:
        self.save()
      writer.flush()
    seconds = time.time() - started
    steps = int(self.step.numpy()) - start_step
    return TrainSummary(start_step, int(self.step.numpy()), seconds,
                        steps * global_batch / max(seconds, 1e-9), losses,
                        int(self.nonfinite_steps.numpy()), stop.signal_name)

  def _write_media_summaries(self, batch, step: int, max_outputs: int = 2) -> None:
    """Audio and mel images of (input, reconstruction) for the first clips of `batch`."""
    audio = self.strategy.experimental_local_results(batch["audio"])[0][:max_outputs]
    target = self.model.log_mel(audio)
    reconstruction = self.model.reconstruct(audio)
    waveform = self.model.to_waveform(reconstruction)
    rate = self.config.sample_rate_hz
    tf.summary.audio("audio/input", audio[..., tf.newaxis], rate, step=step,
                     max_outputs=max_outputs)
    tf.summary.audio("audio/reconstruction", waveform[..., tf.newaxis], rate, step=step,
                     max_outputs=max_outputs)
    pair = tf.concat([target, tf.cast(reconstruction, tf.float32)], axis=2)  # mels side by side
    image = tf.transpose(pair, [0, 2, 1])[:, ::-1, :, tf.newaxis]          # low mels at bottom
    image = (tf.clip_by_value(image, -2.5, 2.5) + 2.5) / 5.0
    tf.summary.image("log_mel/input_vs_reconstruction", image, step=step, max_outputs=max_outputs)

  def evaluate(self, dataset: tf.data.Dataset, max_batches: Optional[int] = None,
               write_summaries: bool = True) -> dict:
    """Mean of every loss term over `dataset` (one pass, or `max_batches`)."""
    step_fn = tf.function(self.eval_step)
    totals, count = {}, 0
    for i, batch in enumerate(dataset):
      if max_batches is not None and i >= max_batches:
        break
      terms = step_fn(batch["audio"])
      n = int(tf.shape(batch["audio"])[0])
      for k in LOSS_KEYS:
        totals[k] = totals.get(k, 0.0) + float(terms[k]) * n
      count += n
    if not count:
      raise NoEvalClipsError("the eval dataset yielded no clips")
    means = {k: v / count for k, v in totals.items()}
    means["clips"] = count
    if write_summaries and self.is_chief:
      step = int(self.step.numpy())
      with tf.summary.create_file_writer(str(self.run_dir / "eval")).as_default():
        for k in LOSS_KEYS:
          tf.summary.scalar(f"losses/{k}", means[k], step=step)
    return means


def format_losses(values: dict) -> str:
  """One line per term, aligned, for the final summaries."""
  return "\n".join(f"  {k:<22s}{v:12.4f}" if isinstance(v, float) else f"  {k:<22s}{v:>12}"
                   for k, v in values.items())


def seed_everything(seed: int) -> None:
  keras.utils.set_random_seed(seed)
  np.random.seed(seed)


def seed_run(config: config_lib.Config, step: int = 0) -> config_lib.Config:
  """Seeds Python, NumPy, TensorFlow and Keras for a run that starts at `step`; returns
  the config to build its training data with.

  A fresh run is seeded with config.seed (as `seed_everything`) and its data built from
  `config` itself. A resumed run takes config.seed + step, for its random ops and in
  the returned config's `seed` (its crops and shuffles), so that it does not replay the
  batches of the run's first steps; config.json keeps the run's own seed.
  """
  seed = config.seed + step
  seed_everything(seed)
  return dataclasses.replace(config, seed=seed) if step else config
