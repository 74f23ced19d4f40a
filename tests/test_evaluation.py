"""Evaluation: baselines on synthesized clips, clip loading, `wave_music_vae_evaluate` end to end."""

import dataclasses
import json
import math
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile
import tensorflow as tf

from conftest import synth_song
from wave_music_vae import checkpoints
from wave_music_vae import data
from wave_music_vae import evaluation
from wave_music_vae import inference
from wave_music_vae import metrics

SECTIONS = ("data", "reconstruction", "latent", "interpolation", "realism", "probe", "model")


def _evaluate_command(*args, timeout=300):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  command = [os.path.join(os.path.dirname(sys.executable), "wave_music_vae_evaluate"), *args]
  return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)


def _numbers(value):
  """Every number in a nested JSON value."""
  if isinstance(value, dict):
    return [n for v in value.values() for n in _numbers(v)]
  if isinstance(value, list):
    return [n for v in value for n in _numbers(v)]
  return [value] if isinstance(value, (int, float)) and not isinstance(value, bool) else []


def test_ceiling_lies_below_the_floor_on_synthesized_clips(tiny_config):
  clips = np.stack([synth_song(1.0, base_hz=base_hz, seed=seed)
                    for seed, base_hz in enumerate((110.0, 220.0, 440.0))])
  inverter = evaluation.MelInverter(tiny_config)
  true_db, = inverter.log_mel_db(clips)
  ceiling, = inverter.to_waveform(true_db)
  mean_mel = np.broadcast_to(true_db.mean(axis=(0, 1)), true_db.shape)
  floor, = inverter.to_waveform(mean_mel)
  rate = tiny_config.sample_rate_hz
  assert np.all(metrics.multi_resolution_stft_distance(ceiling, clips)
                < metrics.multi_resolution_stft_distance(floor, clips))
  assert np.all(metrics.log_mel_l1_db(ceiling, clips, rate)
                < metrics.log_mel_l1_db(floor, clips, rate) - 3.0)


def test_load_clips_spreads_over_files_and_falls_back_when_nothing_is_held_out(song_folder,
                                                                               tiny_config):
  source = data.DatasetSource(str(song_folder), "folder")
  clips = evaluation.load_clips(source, tiny_config, "train", max_clips=4)
  assert clips.audio.shape == (4, tiny_config.clip_samples)
  assert sorted(set(clips.labels)) == ["high", "low"]
  fallback = evaluation.held_out_clips(source, tiny_config, max_clips=3)
  assert fallback.split.startswith("train (not held out")
  held_out_config = dataclasses.replace(tiny_config, eval_fraction=0.5)
  eval_files = source.files("eval", held_out_config)
  held_out = evaluation.held_out_clips(source, held_out_config, max_clips=100)
  assert held_out.split == "eval" and 0 < len(eval_files) < 6
  # 3 s songs hold three 1 s fixed crops each.
  assert len(held_out) == 3 * len(eval_files)


def test_clips_from_tfrecords_spread_over_songs_whatever_order_they_are_read_in(tmp_path,
                                                                              tiny_config):
  """Several shards are read in turn, so a song's clips can come one every N clips; an even
  spacing over that order would alias with it and keep a few songs' clips only."""
  records = tmp_path / "clips-00000-of-00001"
  with tf.io.TFRecordWriter(str(records)) as writer:
    for offset in range(3):
      for song in range(6):   # read order: song 0..5, then again, and again
        clip = synth_song(1.0, seed=10 * song + offset)
        writer.write(data.make_example(clip, tiny_config.sample_rate_hz, "a", f"s{song}.wav",
                                       float(offset), "eval").SerializeToString())
  source = data.DatasetSource(str(tmp_path / "clips*"), "folder")
  clips = evaluation.load_clips(source, tiny_config, "eval", max_clips=4)
  assert len(clips) == 4 and len(set(clips.sources)) == 4


def test_a_folder_is_read_as_songs_when_the_config_says_tfrecord(song_folder, tiny_config):
  """A model trained on TFRecords (`data_layout=tfrecord`) is evaluated on the song folder."""
  source = data.DatasetSource(str(song_folder), "tfrecord")
  assert not source.is_tfrecord
  clips = evaluation.load_clips(source, tiny_config, "train", max_clips=4)
  assert len(clips) == 4


def test_silent_held_out_clips_are_left_out_and_counted(song_folder, tiny_config, tmp_path):
  """A track's silent ending would dominate spectral convergence, which divides by it."""
  folder = tmp_path / "songs"
  shutil.copytree(song_folder, folder)
  song = sorted(folder.rglob("*.wav"))[0]
  audio, rate = soundfile.read(str(song), dtype="float32")
  quiet_tail = np.concatenate([audio, np.zeros(3 * rate, np.float32),
                               1e-5 * audio[:rate]])   # 3 s of silence, then -100 dB
  soundfile.write(str(song), quiet_tail, rate)
  source = data.DatasetSource(str(folder), "folder")
  every_clip = evaluation.load_clips(source, tiny_config, "train", max_clips=100)
  held_out = evaluation.held_out_clips(source, tiny_config, max_clips=100)
  assert held_out.silent_left_out == 4   # 1 s crops: three silent, one 100 dB down
  assert len(held_out) == len(every_clip) - 4
  rms_db = 20 * np.log10(np.sqrt(np.mean(np.square(held_out.audio), axis=1)))
  assert rms_db.min() > evaluation.SILENCE_DBFS
  silent = evaluation.Clips(np.zeros((3, 100), np.float32), np.array(["a"] * 3), "eval")
  with pytest.raises(data.DataError, match="all 3 clips of the eval split are silent"):
    evaluation.without_silence(silent)


def test_check_finite_names_the_first_bad_number():
  evaluation.check_finite({"a": {"b": [1.0, 2]}, "c": None, "d": "text"})
  with pytest.raises(evaluation.EvaluationError, match=r"results\.a\.b\[1\] is nan"):
    evaluation.check_finite({"a": {"b": [1.0, float("nan")]}})


def test_evaluate_raises_on_a_model_that_outputs_nan(trained_run_dir, song_folder, tiny_config):
  loaded = checkpoints.load(run_dir=str(trained_run_dir))
  for variable in loaded.model.encoder.weights:
    variable.assign(np.full(variable.shape, np.nan, variable.dtype))
  clips = evaluation.load_clips(data.DatasetSource(str(song_folder), "folder"), tiny_config,
                                "train", max_clips=4)
  with pytest.raises(evaluation.EvaluationError, match="encoding held-out clips gave NaN"):
    evaluation.evaluate(inference.KerasBackend(loaded), clips, clips)


def test_evaluate_command_end_to_end(trained_run_dir, song_folder, tmp_path):
  output = tmp_path / "evaluation.json"
  result = _evaluate_command(f"--run_dir={trained_run_dir}", f"--examples_path={song_folder}",
                             "--max_clips=6", "--max_train_clips=12", f"--output_json={output}",
                             "--refine_steps=10")
  assert result.returncode == 0, result.stderr
  assert "no eval files at eval_fraction=0" in result.stdout
  for heading in ("Reconstruction", "Latent health", "Interpolation (3 held-out pairs, 7 steps)",
                  "Realism", "Probe"):
    assert heading in result.stdout
  results = json.loads(output.read_text(), parse_constant=lambda name: pytest.fail(name))
  assert sorted(os.listdir(tmp_path)) == ["evaluation.json"]   # no partial file left
  assert set(SECTIONS) <= set(results)
  assert all(math.isfinite(n) for n in _numbers(results))
  assert results["data"]["held_out_clips"] == 6 and results["data"]["train_clips"] == 12
  reconstruction = results["reconstruction"]
  assert reconstruction["ceiling"]["mr_stft"] < reconstruction["floor"]["mr_stft"]
  assert reconstruction["pca"]["components"] == 8
  # Refinement is its own row; the plain encoder mean keeps the "model" row.
  assert reconstruction["model_refined"]["refine_steps"] == 10
  assert reconstruction["model_refined"]["mr_stft"] != reconstruction["model"]["mr_stft"]
  assert set(reconstruction["gap_closed"]) == {"model", "model_refined", "pca"}
  # Each model row against PCA on the same clips: the paired mean is the difference of the
  # rows' means, inside its own interval.
  assert set(reconstruction["versus_pca"]) == {"model", "model_refined"}
  for name, comparison in reconstruction["versus_pca"].items():
    for key in ("mr_stft", "log_mel_l1_db"):
      paired = comparison[key]
      assert paired["mean"] == pytest.approx(reconstruction[name][key]
                                             - reconstruction["pca"][key], abs=1e-9)
      assert paired["ci_low"] <= paired["mean"] <= paired["ci_high"]
      assert paired["clips"] == 6
  assert "minus PCA, same clips (95% bootstrap CI)" in result.stdout
  assert "model: mu refined, 10 steps" in result.stdout
  assert len(results["latent"]["kl_nats_per_dimension"]) == 8
  assert 0 <= results["latent"]["active_units"] <= 8
  assert results["interpolation"]["pairs"] == 3
  assert set(results["realism"]["frechet_db2"]) == {
      "prior_temperature_0.5", "prior_temperature_1", "interpolation_midpoints", "crossfades",
      "real_subset", "reconstructions", "ceiling"}
  assert results["probe"]["labels"] == ["high", "low"]
  assert results["probe"]["chance_held_out"] == pytest.approx(0.5)
  assert results["probe"]["cv_grouped_by"] == "song"   # 2+ training songs of each label


def test_evaluate_command_rejects_bad_flags_in_one_line(tmp_path, song_folder):
  existing = tmp_path / "taken.json"
  existing.write_text("{}")
  result = _evaluate_command(f"--examples_path={song_folder}", f"--output_json={existing}",
                             "--max_clips=1")
  assert result.returncode == 1
  assert result.stderr.strip().splitlines()[-1] == (
      "wave_music_vae_evaluate: error: --max_clips=1: need at least 2 clips")
  result = _evaluate_command(f"--examples_path={song_folder}", f"--output_json={existing}")
  assert result.returncode == 1 and "Traceback" not in result.stderr
  assert result.stderr.strip().splitlines()[-1] == (
      f"wave_music_vae_evaluate: error: --output_json={existing} exists; "
      "pass --overwrite to replace it")
  assert existing.read_text() == "{}"
  # Even with --overwrite, a song among the inputs is never replaced by the JSON.
  song = next(song_folder.rglob("*.wav"))
  before = song.read_bytes()
  result = _evaluate_command(f"--examples_path={song_folder}", f"--output_json={song}",
                             "--overwrite")
  assert result.returncode == 1 and song.read_bytes() == before
  assert result.stderr.strip().splitlines()[-1] == (
      f"wave_music_vae_evaluate: error: --output_json={song}: the name must end in .json")
  # Nor is the model folder's own config.json (the run would then not load).
  model_folder = tmp_path / "run"
  model_folder.mkdir()
  (model_folder / "config.json").write_text('{"base": "tiny"}')
  result = _evaluate_command(f"--examples_path={song_folder}",
                             f"--output_json={model_folder / 'config.json'}", "--overwrite")
  assert result.returncode == 1
  assert result.stderr.strip().splitlines()[-1] == (
      f"wave_music_vae_evaluate: error: --output_json={model_folder / 'config.json'}: one of a "
      "model folder's own files (never overwritten, even with --overwrite)")
  assert (model_folder / "config.json").read_text() == '{"base": "tiny"}'


def test_an_output_json_made_during_the_evaluation_is_not_replaced(trained_run_dir, song_folder,
                                                                   tmp_path):
  """--output_json is checked at the start; a file made there while the evaluation runs (a
  second evaluation's, started meanwhile) is not replaced at the end either."""
  output = tmp_path / "eval.json"
  command = [os.path.join(os.path.dirname(sys.executable), "wave_music_vae_evaluate"),
             f"--run_dir={trained_run_dir}", f"--examples_path={song_folder}", "--max_clips=2",
             "--max_train_clips=2", "--noprogress", f"--output_json={output}"]
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
  with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                        env=env) as evaluating:
    for line in evaluating.stdout:      # Printed once the flags were checked.
      if line.startswith("evaluating "):
        output.write_text('{"another": "evaluation"}')
        break
    evaluating.stdout.read()
    stderr = evaluating.stderr.read()
  assert evaluating.returncode == 1 and "Traceback" not in stderr, stderr
  assert stderr.strip().splitlines()[-1] == (
      f"wave_music_vae_evaluate: error: --output_json={output} appeared during the evaluation "
      "and was not replaced; the figures are in the table above (pass --overwrite to replace it)")
  assert output.read_text() == '{"another": "evaluation"}'
  assert os.listdir(tmp_path) == ["eval.json"]   # no partial file left


def test_training_clips_from_tfrecords_are_all_read_and_the_same_each_run(tmp_path, tiny_config):
  """The evaluator reads the TFRecords' train split as eval is read: every clip (6, fewer than
  a training batch), fixed crops of clips longer than the model's, in the same order."""
  path = tmp_path / "clips.tfrecord-00000-of-00001"
  with tf.io.TFRecordWriter(str(path)) as writer:
    for i in range(8):
      clip = synth_song(1.5, seed=i)     # longer than the tiny model's 1 s clip
      writer.write(data.make_example(clip, tiny_config.sample_rate_hz, f"label{i % 2}",
                                     f"song{i // 2}.wav", 0.0,
                                     "eval" if i >= 6 else "train").SerializeToString())
  source = data.DatasetSource(str(tmp_path / "clips.tfrecord*"), "tfrecord")
  first = evaluation.load_clips(source, tiny_config, "train", max_clips=100)
  again = evaluation.load_clips(source, tiny_config, "train", max_clips=100)
  assert len(first) == 6 and first.audio.shape[1] == tiny_config.clip_samples
  np.testing.assert_array_equal(first.audio, again.audio)
  assert sorted(first.sources) == sorted(f"song{i // 2}.wav".encode() for i in range(6))


def test_songs_without_a_label_are_no_probe_class_of_their_own():
  """Songs at the top of a folder have the label '': the probe leaves them out and counts them
  (as the attribute vectors do) rather than learning a class named ''."""
  rng = np.random.default_rng(0)
  train_labels = np.array(["a"] * 6 + ["b"] * 6 + [""] * 4)
  train = evaluation.Clips(np.zeros((16, 4), np.float32), train_labels, "train",
                           sources=np.array([f"s{i // 2}" for i in range(16)], object))
  held_out = evaluation.Clips(np.zeros((5, 4), np.float32), np.array(["a", "b", "", "a", "b"]),
                              "eval")
  features = lambda labels: rng.normal(size=(len(labels), 3)) + 3.0 * (labels == "a")[:, None]
  section = evaluation._probe_section(  # pylint: disable=protected-access
      features(held_out.labels), features(train_labels), features(held_out.labels),
      features(train_labels), held_out, train, seed=0)
  assert section["labels"] == ["a", "b"]
  assert section["unlabelled_clips_left_out"] == 5
  assert section["chance_held_out"] == pytest.approx(0.5)   # of the 4 labelled held-out clips
  assert section["cv_grouped_by"] == "song" and section["cv_folds"] == 3
  assert section["mu"]["held_out_accuracy"] == 1.0


def test_an_even_subset_of_clips_keeps_every_song():
  """Two long songs and a short one between them: an even spacing of 4 of the 9 clips steps
  over the short song's one clip; it takes the place of a clip of a song that keeps more."""
  sources = np.array([b"alpha"] * 4 + [b"beta"] + [b"gamma"] * 4, object)
  spaced = np.unique(np.round(np.linspace(0, 8, 4)).astype(int))       # 0, 3, 5, 8
  assert b"beta" not in set(sources[spaced])
  kept = evaluation._with_every_song(spaced, sources)  # pylint: disable=protected-access
  assert len(kept) == 4 and set(sources[kept]) == {b"alpha", b"beta", b"gamma"}
  np.testing.assert_array_equal(kept, [0, 4, 5, 8])   # alpha gave up its second clip
  # Already covered, or more songs than clips: unchanged.
  np.testing.assert_array_equal(evaluation._with_every_song(  # pylint: disable=protected-access
      np.array([0, 4, 8]), sources), [0, 4, 8])
  np.testing.assert_array_equal(evaluation._with_every_song(  # pylint: disable=protected-access
      np.array([0, 8]), sources), [0, 8])


def test_clips_from_tfrecords_are_spread_over_the_songs(tmp_path, tiny_config):
  """Beam stores a song's clips together: --max_clips takes an even spread over all of the
  split's clips, every song kept, not the first songs' clips."""
  path = tmp_path / "clips.tfrecord-00000-of-00001"
  with tf.io.TFRecordWriter(str(path)) as writer:
    for song in range(5):
      for i in range(4):
        writer.write(data.make_example(
            synth_song(1.0, seed=10 * song + i), tiny_config.sample_rate_hz,
            "ab"[song % 2], f"song{song}.wav", float(i), "eval").SerializeToString())
  source = data.DatasetSource(str(tmp_path / "clips.tfrecord*"), "tfrecord")
  clips = evaluation.load_clips(source, tiny_config, "eval", max_clips=5)
  assert sorted(clips.sources) == [f"song{s}.wav".encode() for s in range(5)]
  assert sorted(set(clips.labels)) == ["a", "b"]
