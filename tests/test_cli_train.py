"""`wave_music_vae_train` as a user runs it: real subprocesses, real signals, real files."""

import json
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tensorflow as tf

from conftest import SAMPLE_RATE_HZ, synth_song
from wave_music_vae import checkpoints
from wave_music_vae import data

TRAIN = [sys.executable, "-m", "wave_music_vae.cli.train"]


def run(*args, timeout=300):
  return subprocess.run([*TRAIN, *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def messy_folder(song_folder, tmp_path):
  """The synthesized songs plus a corrupt WAV, a zero-byte MP3 and a stray text file."""
  root = tmp_path / "songs with spaces ü"
  shutil.copytree(song_folder, root)
  (root / "low" / "truncated.wav").write_bytes((root / "low" / "song 0.wav").read_bytes()[:30])
  (root / "high" / "empty.mp3").write_bytes(b"")
  (root / "high" / "notes.txt").write_text("not audio")
  return root


def _steps_in(run_dir: Path):
  return sorted(int(p.name[len("ckpt-"):-len(".index")]) for p in (run_dir / "train").glob("ckpt-*.index"))


def test_train_writes_checkpoints_and_events_then_resumes(messy_folder, tmp_path):
  run_dir = tmp_path / "run"
  first = run("--config=tiny", f"--run_dir={run_dir}", f"--examples_path={messy_folder}",
              "--num_steps=25", "--noprogress", "--eval_num_batches=2")
  assert first.returncode == 0, first.stderr
  assert 25 in _steps_in(run_dir)
  assert list((run_dir / "train").glob("events.out.tfevents.*"))
  assert (run_dir / "config.json").is_file()
  assert "2 unreadable file(s) skipped" in first.stdout
  assert "truncated.wav" in first.stderr and "empty.mp3" in first.stderr
  assert "Traceback" not in first.stderr
  second = run("--config=tiny", f"--run_dir={run_dir}", f"--examples_path={messy_folder}",
               "--num_steps=35", "--noprogress", "--eval_num_batches=2")
  assert second.returncode == 0, second.stderr
  assert "step 25" in second.stdout and "trained steps 25 -> 35" in second.stdout
  assert 35 in _steps_in(run_dir)
  (run_dir / "train_options.json").unlink()  # As in a run from before it was written.
  evaluation = run("--config=tiny", f"--run_dir={run_dir}", f"--examples_path={messy_folder}",
                   "--mode=eval", "--eval_num_batches=2")
  assert evaluation.returncode == 0 and "reconstruction_loss" in evaluation.stdout
  assert list((run_dir / "eval").glob("events.out.tfevents.*"))
  assert not (run_dir / "train_options.json").exists()  # An eval records no training options.


# The train command, with every training dataset it builds recorded (as JSON lines in the
# file named by its first argument): the seed it was built with and the songs of its
# first 24 clips (which song each clip comes from is seeded; where in the song is not).
RECORDING_TRAIN = r"""
import json, sys
from absl import app
from wave_music_vae import data
from wave_music_vae.cli import train

record = sys.argv.pop(1)
build = data.DatasetSource.dataset

def recording(self, config, split, *args, **kwargs):
  dataset = build(self, config, split, *args, **kwargs)
  if split == "train":
    twin = build(self, config, split, with_source=True)
    songs = [s.decode() for b in twin.take(6) for s in b["source"].numpy()]
    with open(record, "a", encoding="utf-8") as f:
      f.write(json.dumps({"seed": config.seed, "songs": songs}) + "\n")
  return dataset

data.DatasetSource.dataset = recording
app.run(lambda argv: sys.exit(train.run(argv)))
"""


def test_a_resumed_run_trains_on_other_batches_than_its_first_steps(song_folder, tmp_path,
                                                                    tiny_config):
  """The command builds a run's training data once, after the restore: a resumed run's from
  config.seed + its step (**was**: built twice on a resume; and nothing showed that the
  command reseeds, where the batches of the run's first steps would come again)."""
  script, record = tmp_path / "recording_train.py", tmp_path / "datasets.jsonl"
  script.write_text(RECORDING_TRAIN)
  args = [sys.executable, str(script), str(record), "--config=tiny", f"--run_dir={tmp_path / 'r'}",
          f"--examples_path={song_folder}", "--noprogress", "--eval_num_batches=1"]
  builds = []
  for num_steps in (2, 3):
    done = subprocess.run([*args, f"--num_steps={num_steps}"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    builds.append([json.loads(line) for line in record.read_text().splitlines()])
    record.unlink()
  (first,), (resumed,) = builds  # One training dataset per run.
  assert resumed["songs"] != first["songs"]
  assert first["seed"] == tiny_config.seed and resumed["seed"] == tiny_config.seed + 2


@pytest.mark.parametrize("args,message", [
    (["--config=nope"], "unknown config 'nope'; valid configs: fma_small, folder, gtzan"),
    (["--config=tiny", "--hparams=zsize=3"], "unknown hparam(s) zsize; valid names:"),
    (["--config=tiny", "--hparams=batch_size=many"], "bad value 'many' for hparam 'batch_size'"),
    (["--config=tiny", "--examples_path=/nonexistent/folder"], "no TFRecord files match"),
    (["--config=tiny", "--num_steps=-5"], "flag --num_steps=-5: -5 is not a non-negative integer"),
    (["--config=tiny", "--eval_num_batches=-1"], "flag --eval_num_batches=-1: -1 is not a non-"),
    (["--config=tiny", "--mode=eval", "--warm_start_from=runs/other"],
     "--warm_start_from starts a training run; --mode=eval evaluates the run directory's own"),
])
def test_config_and_flag_errors_are_one_line(tmp_path, args, message):
  defaults = {"--run_dir": str(tmp_path / "r"), "--examples_path": str(tmp_path)}
  for flag, value in defaults.items():
    if not any(a.startswith(flag) for a in args):
      args = [*args, f"{flag}={value}"]
  result = run(*args)
  assert result.returncode == 1
  assert message in result.stderr
  assert "Traceback" not in result.stderr


def test_a_folder_whose_only_song_is_held_out_says_so(song_folder, tmp_path):
  name = next(f"song{i}.wav" for i in range(100) if data.split_of(f"song{i}.wav", 0.5) == "eval")
  folder = tmp_path / "one song"
  folder.mkdir()
  shutil.copy(next(song_folder.rglob("*.wav")), folder / name)
  result = run("--config=tiny", "--hparams=eval_fraction=0.5", f"--run_dir={tmp_path / 'r'}",
               f"--examples_path={folder}")
  assert result.returncode == 1 and "Traceback" not in result.stderr
  assert result.stderr.strip().splitlines()[-1] == (
      f"wave_music_vae_train: error: {folder}: the train split is empty at eval_fraction=0.5 "
      "(all 1 file(s) are held out for eval); lower --hparams=eval_fraction or add songs")
  assert not (tmp_path / "r").exists()


def test_the_official_split_of_a_folder_or_of_gtzan_test_songs_alone_is_refused(song_folder,
                                                                                tmp_path):
  result = run("--config=tiny", "--hparams=split_method=official", f"--run_dir={tmp_path / 'r'}",
               f"--examples_path={song_folder}")
  assert result.returncode == 1 and "Traceback" not in result.stderr
  assert result.stderr.strip().splitlines()[-1] == (
      f"wave_music_vae_train: error: {song_folder}: split_method=official, but the folder layout "
      "has no official split (only gtzan and fma have one); use split_method=hash for folders "
      "of your own")
  gtzan = tmp_path / "gtzan" / "genres" / "blues"
  gtzan.mkdir(parents=True)
  shutil.copy(next(song_folder.rglob("*.wav")), gtzan / "blues.00012.wav")   # a test song
  result = run("--config=tiny", "--hparams=split_method=official,data_layout=gtzan",
               f"--run_dir={tmp_path / 'r'}", f"--examples_path={tmp_path / 'gtzan'}")
  assert result.returncode == 1 and "Traceback" not in result.stderr
  assert result.stderr.strip().splitlines()[-1] == (
      f"wave_music_vae_train: error: {tmp_path / 'gtzan'}: the train split is empty at "
      "split_method=official (all 1 file(s) are held out for eval); add the dataset's training "
      "songs, or --hparams=split_method=hash")
  assert not (tmp_path / "r").exists()


def test_tfrecords_with_no_train_split_are_refused_before_the_run_directory_is_made(tmp_path):
  records = tmp_path / "clips-00000-of-00001"
  with tf.io.TFRecordWriter(str(records)) as writer:
    writer.write(data.make_example(synth_song(1.0), SAMPLE_RATE_HZ, "a", "a.wav", 0.0,
                                   "eval").SerializeToString())
  result = run("--config=tiny", f"--run_dir={tmp_path / 'r'}",
               f"--examples_path={tmp_path / 'clips*'}")
  assert result.returncode == 1 and "Traceback" not in result.stderr
  assert result.stderr.strip().splitlines()[-1] == (
      f"wave_music_vae_train: error: {tmp_path / 'clips*'}: the TFRecords hold no train-split "
      "clip (prepared with every song held out?)")
  assert not (tmp_path / "r").exists()


def test_tfrecords_without_an_eval_split_train_and_skip_the_eval_pass(tmp_path):
  records = tmp_path / "clips-00000-of-00001"
  with tf.io.TFRecordWriter(str(records)) as writer:
    for seed in range(4):
      writer.write(data.make_example(synth_song(1.0, seed=seed), SAMPLE_RATE_HZ,
                                     split="train").SerializeToString())
  args = ["--config=tiny", f"--run_dir={tmp_path / 'r'}", f"--examples_path={tmp_path}/clips*",
          "--noprogress"]
  trained = run(*args, "--num_steps=2")
  assert trained.returncode == 0, trained.stderr
  assert "trained steps 0 -> 2" in trained.stdout
  assert ("(the config's clips_per_file and edge_crop_fraction do not apply; its eval_fraction "
          "is theirs)") in trained.stdout
  assert f"{tmp_path}/clips*: its eval split gave no clips (it is empty, or none of its files " \
      "could be read; 0 unreadable file(s) skipped): eval pass skipped" in trained.stdout
  evaluated = run(*args, "--mode=eval")
  assert evaluated.returncode == 1 and "Traceback" not in evaluated.stderr
  assert evaluated.stderr.strip().splitlines()[-1] == (
      f"wave_music_vae_train: error: {tmp_path}/clips*: its eval split gave no clips (it is "
      "empty, or none of its files could be read; 0 unreadable file(s) skipped)")


def test_folder_without_audio_fails_early(tmp_path):
  (tmp_path / "a.wav").write_text("not audio")
  result = run("--config=tiny", f"--run_dir={tmp_path / 'r'}", f"--examples_path={tmp_path}")
  assert result.returncode == 1
  assert "no readable audio among 1 file(s)" in result.stderr and "Traceback" not in result.stderr


def test_eval_of_a_run_without_checkpoints_is_refused(song_folder, tmp_path):
  """A mistyped --run_dir must not evaluate untrained weights and report success."""
  run_dir = tmp_path / "typo"
  result = run("--config=tiny", f"--run_dir={run_dir}", f"--examples_path={song_folder}",
               "--mode=eval", "--eval_num_batches=1")
  assert result.returncode == 1
  assert f"{run_dir}: no checkpoint to evaluate" in result.stderr
  assert "Traceback" not in result.stderr and not run_dir.exists()


def _start(run_dir, folder, num_steps=100000):
  return subprocess.Popen([*TRAIN, "--config=tiny", f"--run_dir={run_dir}",
                           f"--examples_path={folder}", f"--num_steps={num_steps}", "--noprogress",
                           "--hparams=checkpoint_every_steps=10"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_checkpoint(process, run_dir, minimum_step, timeout=240):
  deadline = time.time() + timeout
  while time.time() < deadline:
    if process.poll() is not None:
      raise AssertionError(f"training exited early: {process.communicate()[1][-2000:]}")
    if any(s >= minimum_step for s in _steps_in(run_dir)):
      return
    time.sleep(0.2)
  process.kill()
  raise AssertionError("no checkpoint appeared in time")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_sigint_write_a_checkpoint_before_exiting(song_folder, tmp_path, sig):
  run_dir = tmp_path / "run"
  process = _start(run_dir, song_folder)
  _wait_for_checkpoint(process, run_dir, 10)
  time.sleep(random.uniform(0.0, 1.0))
  process.send_signal(sig)
  stdout, stderr = process.communicate(timeout=120)
  assert process.returncode == 0, stderr
  assert f"stopped by {sig.name}: checkpoint written at step" in stdout
  stopped_at = int(stdout.split("checkpoint written at step ")[1].split()[0])
  assert max(_steps_in(run_dir)) == stopped_at >= 10


def test_sigkill_at_a_random_moment_resumes_from_the_last_checkpoint(song_folder, tmp_path):
  run_dir = tmp_path / "run"
  process = _start(run_dir, song_folder)
  _wait_for_checkpoint(process, run_dir, 10)
  time.sleep(random.uniform(0.0, 3.0))
  process.send_signal(signal.SIGKILL)
  process.communicate(timeout=60)
  assert process.returncode == -signal.SIGKILL  # the kill really happened mid-run
  last = tf.train.latest_checkpoint(str(run_dir / "train"))
  assert last is not None
  saved_step = int(last.rsplit("-", 1)[1])
  tf.train.load_checkpoint(last)  # the newest checkpoint named by the index is complete
  resumed = _start(run_dir, song_folder, num_steps=saved_step + 5)
  stdout, stderr = resumed.communicate(timeout=300)
  assert resumed.returncode == 0, stderr
  assert f"step {saved_step}" in stdout
  assert f"trained steps {saved_step} -> {saved_step + 5}" in stdout


def test_mixed_precision_trains_once_the_loss_scale_settles(song_folder, tmp_path):
  result = run("--config=tiny", f"--run_dir={tmp_path / 'run'}", f"--examples_path={song_folder}",
               "--num_steps=20", "--noprogress", "--mixed_precision", "--eval_num_batches=1")
  assert result.returncode == 0, result.stderr
  skipped = int(result.stdout.split("non-finite steps skipped: ")[1].split(";")[0])
  # float16 overflows at the optimizer's first loss scale (2^15); each overflow halves it.
  assert 0 < skipped < 15
  assert "nan" not in result.stdout.split("eval on")[1].lower()


def test_warm_start_continues_a_trained_model_then_resumes_its_own(trained_run_dir, song_folder,
                                                                   tmp_path):
  source_step = max(_steps_in(trained_run_dir))
  run_dir = tmp_path / "fine-tuned"
  args = ["--config=tiny", f"--run_dir={run_dir}", f"--examples_path={song_folder}",
          f"--warm_start_from={trained_run_dir}", "--noprogress", "--eval_num_batches=1"]
  first = run(*args, f"--num_steps={source_step + 5}")
  assert first.returncode == 0, first.stderr
  assert f"warm-started from {trained_run_dir}/train/ckpt-{source_step} (step {source_step})" \
      in first.stdout
  assert f"trained steps {source_step} -> {source_step + 5}" in first.stdout
  second = run(*args, f"--num_steps={source_step + 8}")
  assert second.returncode == 0, second.stderr
  assert "has a checkpoint of its own: resuming it, not warm-starting" in second.stdout
  assert f"trained steps {source_step + 5} -> {source_step + 8}" in second.stdout


def test_warm_start_to_a_step_it_has_passed_is_refused(trained_run_dir, song_folder, tmp_path):
  """--num_steps is the step to reach; below the copied step the run would train nothing."""
  source_step = max(_steps_in(trained_run_dir))
  run_dir = tmp_path / "run"
  done = run("--config=tiny", f"--run_dir={run_dir}", f"--examples_path={song_folder}",
             f"--warm_start_from={trained_run_dir}", f"--num_steps={source_step}", "--noprogress")
  assert done.returncode == 1 and "Traceback" not in done.stderr
  assert done.stderr.strip().splitlines()[-1] == (
      f"wave_music_vae_train: error: --num_steps={source_step} is not above step "
      f"{source_step:,} of {trained_run_dir}/train/ckpt-{source_step}, where the warm start "
      f"begins; --num_steps is the step to train until (e.g. --num_steps={source_step + 12000})")
  assert not run_dir.exists()


def test_warm_start_from_another_architecture_is_one_line_and_makes_nothing(trained_run_dir,
                                                                           song_folder, tmp_path):
  run_dir = tmp_path / "run"
  done = run("--config=tiny", "--hparams=z_size=16", f"--run_dir={run_dir}",
             f"--examples_path={song_folder}", f"--warm_start_from={trained_run_dir}",
             f"--num_steps={max(_steps_in(trained_run_dir)) + 5}", "--noprogress")
  assert done.returncode == 1 and "Traceback" not in done.stderr
  assert done.stderr.strip().splitlines()[-1].startswith(
      "wave_music_vae_train: error: the warm-start model's ")
  assert not run_dir.exists()


def test_warm_start_from_a_shipped_folder_that_does_not_say_its_step(trained_run_dir, song_folder,
                                                                     tmp_path):
  """A metadata.json without `steps` warm-starts at step 0 (**was**: `TypeError: unsupported
  format string passed to NoneType.__format__` at --num_steps=0)."""
  shipped = checkpoints.save_shipped(checkpoints.load(run_dir=str(trained_run_dir)),
                                     tmp_path / "shipped", {"config": "tiny"})
  run_dir = tmp_path / "run"
  done = run("--config=tiny", f"--run_dir={run_dir}", f"--examples_path={song_folder}",
             f"--warm_start_from={shipped}", "--num_steps=0", "--noprogress")
  assert done.returncode == 1 and "Traceback" not in done.stderr
  assert done.stderr.strip().splitlines()[-1] == (
      f"wave_music_vae_train: error: --num_steps=0 is not above step 0 of {shipped}, where the "
      "warm start begins; --num_steps is the step to train until (e.g. --num_steps=12000)")
  assert not run_dir.exists()


def test_resuming_with_the_other_precision_is_refused_in_one_line(song_folder, tmp_path):
  """**was**: every checkpoint reported as damaged, and 'start a new --run_dir'."""
  run_dir = tmp_path / "run"
  args = ["--config=tiny", f"--run_dir={run_dir}", f"--examples_path={song_folder}",
          "--noprogress", "--eval_num_batches=1"]
  first = run(*args, "--num_steps=2")
  assert first.returncode == 0, first.stderr
  toggled = run(*args, "--num_steps=4", "--mixed_precision")
  assert toggled.returncode == 1 and "Traceback" not in toggled.stderr
  assert toggled.stderr.strip().splitlines()[-1] == (
      f"wave_music_vae_train: error: {run_dir} was trained without --mixed_precision, whose "
      "optimizer state its checkpoints hold; leave out --mixed_precision to resume or evaluate "
      "it, or use a new --run_dir")
  assert _steps_in(run_dir) == [2]
