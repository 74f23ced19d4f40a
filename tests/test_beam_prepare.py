"""The Beam preparation pipeline on the DirectRunner, over synthesized songs on disk.

The songs include a 44.1 kHz stereo file (mixed down and resampled), one shorter
than a clip (zero-padded), a corrupt file and an empty one (skipped, listed).
"""

import dataclasses
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile

pytest.importorskip("apache_beam")

import tensorflow as tf  # pylint: disable=g-import-not-at-top

from conftest import SAMPLE_RATE_HZ, synth_song  # pylint: disable=g-import-not-at-top
from wave_music_vae import audio_io  # pylint: disable=g-import-not-at-top
from wave_music_vae import data  # pylint: disable=g-import-not-at-top
from wave_music_vae.beam import prepare  # pylint: disable=g-import-not-at-top

EVAL_FRACTION = 0.5
EXAMPLE_SECS = 1.0  # The tiny config's clip_seconds.
SONG_SECS = {"low/song 0.wav": 3.0, "low/song 1.wav": 3.0, "high/stereo 44k.wav": 3.0,
             "high/short.wav": 0.5}
UNREADABLE = ("high/bad.wav", "empty.flac")


@pytest.fixture(scope="module")
def song_root(tmp_path_factory):
  root = tmp_path_factory.mktemp("beam_songs")
  for i, (relative, seconds) in enumerate(SONG_SECS.items()):
    (root / relative).parent.mkdir(exist_ok=True)
    if "44k" in relative:
      soundfile.write(str(root / relative), synth_song(seconds, 44100, seed=i, channels=2), 44100)
    else:
      soundfile.write(str(root / relative), synth_song(seconds, seed=i, base_hz=110.0 * (i + 1)),
                      SAMPLE_RATE_HZ)
  (root / "high" / "bad.wav").write_bytes(b"RIFF\x00\x01 not really a wave file" * 20)
  (root / "empty.flac").write_bytes(b"")
  return root


@pytest.fixture(scope="module")
def prepared(song_root, tmp_path_factory):
  prefix = tmp_path_factory.mktemp("tfrecords") / "clips.tfrecord"
  return prepare.prepare_tfrecord(
      [str(song_root)], str(prefix), example_secs=EXAMPLE_SECS, num_shards=2,
      eval_split_fraction=EVAL_FRACTION, sample_rate_hz=SAMPLE_RATE_HZ)


def _records(prefix):
  paths = sorted(tf.io.gfile.glob(f"{prefix}-*-of-*"))
  return [{k: v.numpy() for k, v in data.parse_example(serialized).items()}
          for serialized in tf.data.TFRecordDataset(paths)]


def _clips_per_song(seconds, example_secs, hop_secs):
  return max(1, int((seconds - example_secs) // hop_secs) + 1)


def test_cut_clips_hops_and_pads():
  audio = np.arange(10, dtype=np.float32)
  starts, clips = prepare.cut_clips(audio, 4, 3)
  np.testing.assert_array_equal(starts, [0, 3, 6])
  np.testing.assert_array_equal(clips, [audio[0:4], audio[3:7], audio[6:10]])
  starts, clips = prepare.cut_clips(audio[:3], 4, 3)
  np.testing.assert_array_equal(starts, [0])
  np.testing.assert_array_equal(clips, [[0, 1, 2, 0]])


def test_manifest_counts_labels_seconds_and_skipped_files(prepared, song_root):
  manifest = prepared.manifest
  assert prepared.manifest_path == str(Path(manifest["output_tfrecord_path"]).parent
                                       / "manifest-clips.tfrecord.json")
  assert json.loads(Path(prepared.manifest_path).read_text()) == manifest
  assert manifest["tfrecord_files"] == [f"{manifest['output_tfrecord_path']}-0000{i}-of-00002"
                                        for i in range(2)]
  assert all(Path(p).is_file() for p in manifest["tfrecord_files"])
  assert manifest["files_listed"] == len(SONG_SECS) + len(UNREADABLE)
  assert (manifest["files_read"], manifest["files_skipped"]) == (len(SONG_SECS), len(UNREADABLE))

  expected = {split: {"files": 0, "clips": 0, "audio_seconds": 0.0} for split in data.SPLITS}
  labels = {}
  for relative, seconds in SONG_SECS.items():
    split = data.split_of(relative, EVAL_FRACTION)
    clips = _clips_per_song(seconds, EXAMPLE_SECS, EXAMPLE_SECS)
    expected[split]["files"] += 1
    expected[split]["clips"] += clips
    expected[split]["audio_seconds"] += seconds
    labels.setdefault(relative.split("/")[0], {s: 0 for s in data.SPLITS})[split] += clips
  assert all(expected[split]["files"] for split in data.SPLITS), "both splits must be exercised"
  for split in data.SPLITS:
    totals = manifest["splits"][split]
    assert {k: totals[k] for k in ("files", "clips")} == {
        k: expected[split][k] for k in ("files", "clips")}
    assert totals["audio_seconds"] == pytest.approx(expected[split]["audio_seconds"], abs=1e-3)
    assert totals["clip_seconds"] == pytest.approx(expected[split]["clips"] * EXAMPLE_SECS)
  assert manifest["labels"] == labels
  assert manifest["clips"] == sum(expected[s]["clips"] for s in data.SPLITS)

  skipped = {Path(s["path"]).relative_to(song_root).as_posix(): s["reason"]
             for s in manifest["skipped_files"]}
  assert sorted(skipped) == sorted(UNREADABLE)
  assert skipped["empty.flac"] == "empty file (0 bytes)"
  assert skipped["high/bad.wav"].startswith("not readable as audio")
  assert prepared.counters == {"files_read": len(SONG_SECS), "files_skipped": len(UNREADABLE),
                               "clips_written": manifest["clips"]}


def test_each_clip_is_its_song_decoded_at_its_offset(prepared, song_root):
  records = _records(prepared.manifest["output_tfrecord_path"])
  clip_samples = int(EXAMPLE_SECS * SAMPLE_RATE_HZ)
  songs = {relative: audio_io.read_audio(song_root / relative, SAMPLE_RATE_HZ)
           for relative in SONG_SECS}
  cuts = set()
  for record in records:
    relative = record["source_path"].decode()
    start = int(record["offset_samples"])
    assert start == int(round(float(record["offset_seconds"]) * SAMPLE_RATE_HZ))
    song = np.pad(songs[relative], (0, max(0, clip_samples - len(songs[relative]))))
    np.testing.assert_array_equal(record["audio"], song[start:start + clip_samples],
                                  err_msg=f"{relative} at {start}")
    assert record["sample_rate_hz"] == SAMPLE_RATE_HZ
    assert record["label"].decode() == relative.split("/")[0]
    assert record["split"].decode() == data.split_of(relative, EVAL_FRACTION)
    cuts.add((relative, start))
  assert len(cuts) == len(records)
  assert cuts == {(relative, i * clip_samples) for relative, seconds in SONG_SECS.items()
                  for i in range(_clips_per_song(seconds, EXAMPLE_SECS, EXAMPLE_SECS))}


def _clip_multiset(dataset):
  return sorted((label.decode(), audio.tobytes()) for batch in dataset.as_numpy_iterator()
                for audio, label in zip(batch["audio"], batch["label"]))


def test_training_reader_yields_the_folder_readers_clips(prepared, song_root, tiny_config):
  # The folder reader's eval crops of a 3 s song are 1 s clips at 0, 1 and 2 s, and a
  # 0.5 s song gives one zero-padded clip: the clips the pipeline cut.
  tiny_config = dataclasses.replace(tiny_config, eval_fraction=EVAL_FRACTION)
  source = data.DatasetSource(str(song_root), "folder")
  pattern = prepared.manifest["output_tfrecord_path"] + "*"
  for split in data.SPLITS:
    skipped = data.SkippedFiles()
    # Batches of one: the train reader drops a last partial batch.
    from_folder = _clip_multiset(data.folder_dataset(
        source.files(split, tiny_config), tiny_config, "eval", skipped, batch_size=1))
    from_tfrecords = _clip_multiset(data.tfrecord_dataset(pattern, tiny_config, split,
                                                          batch_size=1, repeat=False))
    assert from_tfrecords == from_folder, split
    assert len(from_tfrecords) == prepared.manifest["splits"][split]["clips"]
    assert sorted(Path(p).relative_to(song_root).as_posix() for p in skipped.causes) == sorted(
        r for r in UNREADABLE if data.split_of(r, EVAL_FRACTION) == split)


def _refusal(pattern, config) -> str:
  """The DataError that reading the TFRecords `pattern` with `config` raises."""
  with pytest.raises(data.DataError) as error:
    data.tfrecord_dataset(pattern, config, "train")
  return str(error.value)


def test_tfrecords_split_at_another_fraction_than_the_config_are_refused(prepared, song_root,
                                                                        tiny_config):
  """The TFRecords carry their split, the model's config the one its folder readers use:
  at different fractions, evaluating on the songs would score tracks trained on."""
  pattern = prepared.manifest["output_tfrecord_path"] + "*"
  files = data.list_audio_files(song_root, "folder")
  assert [data.split_of(f.relative_path, EVAL_FRACTION) for f in files] != [
      data.split_of(f.relative_path, 0.1) for f in files]  # songs that would change sides
  config = dataclasses.replace(tiny_config, eval_fraction=0.1)
  assert _refusal(pattern, config) == (
      f"{prepared.manifest_path}: these TFRecords hold songs out at eval_split_fraction=0.5, "
      "the config at eval_fraction=0.1; they must agree, so that a song held out one way is "
      "held out the other (train with --hparams=eval_fraction=0.5, or prepare again with "
      "--eval_split_fraction=0.1)")


# Names in GTZAN's fault-filtered split (wave_music_vae/splits/gtzan_fault_filtered.json).
GTZAN_OFFICIAL = {"blues/blues.00029.au": "train", "rock/rock.00000.au": "train",
                  "blues/blues.00012.au": "eval", "rock/rock.00010.au": "eval",
                  "blues/blues.00000.au": None,     # valid
                  "jazz/jazz.00033.au": None}       # faulty


@pytest.fixture(scope="module")
def gtzan_official(tmp_path_factory):
  """TFRecords of a few GTZAN songs prepared with GTZAN's official split."""
  root = tmp_path_factory.mktemp("gtzan")
  for i, relative in enumerate(GTZAN_OFFICIAL):
    (root / "genres" / relative).parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(root / "genres" / relative), synth_song(1.0, seed=i), SAMPLE_RATE_HZ)
  return prepare.prepare_tfrecord(
      [str(root)], str(tmp_path_factory.mktemp("gtzan_tfrecords") / "clips"),
      example_secs=EXAMPLE_SECS, num_shards=1, sample_rate_hz=SAMPLE_RATE_HZ, layout="gtzan",
      split_method="official")


def test_gtzan_tfrecords_prepared_with_the_official_split_carry_it(gtzan_official):
  manifest = gtzan_official.manifest
  assert (manifest["split_method"], manifest["files_listed"], manifest["files_in_no_split"]) == (
      "official", 6, 2)
  records = _records(manifest["output_tfrecord_path"])
  assert sorted((r["source_path"].decode(), r["split"].decode()) for r in records) == sorted(
      (relative, split) for relative, split in GTZAN_OFFICIAL.items() if split)
  assert {split: manifest["splits"][split]["files"] for split in data.SPLITS} == {
      "train": 2, "eval": 2}


def test_tfrecords_split_by_another_method_than_the_config_are_refused(gtzan_official,
                                                                      tiny_config, monkeypatch):
  """Official TFRecords with a hash config (or the other way round) hold out other songs
  than the config's folder readers would; a manifest written before `split_method` was
  recorded split by hash. A relative pattern is checked too (the manifest lists the shards
  by their absolute paths)."""
  pattern = gtzan_official.manifest["output_tfrecord_path"] + "*"
  monkeypatch.chdir(Path(pattern).parent)
  assert _refusal("clips*", tiny_config).startswith(
      "./manifest-clips.json: these TFRecords were split by split_method=official, the config "
      "by split_method=hash")
  assert _refusal(pattern, tiny_config) == (
      f"{gtzan_official.manifest_path}: these TFRecords were split by split_method=official, "
      "the config by split_method=hash; they must agree, so that a song held out one way is "
      "held out the other (train with --hparams=split_method=official, or prepare again with "
      "--split_method=hash)")
  official = dataclasses.replace(tiny_config, split_method="official")
  clips = _clip_multiset(data.tfrecord_dataset(pattern, official, "eval", batch_size=1))
  assert len(clips) == 2   # one 1 s clip from each test song

  old = {k: v for k, v in gtzan_official.manifest.items() if k != "split_method"}
  Path(gtzan_official.manifest_path).write_text(json.dumps(old))
  try:
    assert "split by split_method=hash, the config by split_method=official" in _refusal(
        pattern, official)
  finally:
    Path(gtzan_official.manifest_path).write_text(json.dumps(gtzan_official.manifest))


def test_the_official_split_of_a_folder_of_your_own_is_refused(song_root, tmp_path):
  with pytest.raises(data.DataError, match=r"split_method=official, but the folder layout has "
                                           r"no official split"):
    prepare.prepare_tfrecord([str(song_root)], str(tmp_path / "clips"), split_method="official")
  with pytest.raises(prepare.PrepareError, match=r"split_method='random' \(valid: hash, "
                                                 r"official\)"):
    prepare.prepare_tfrecord([str(song_root)], str(tmp_path / "clips"), split_method="random")


@pytest.mark.parametrize("rate, tolerance", [(SAMPLE_RATE_HZ, 0.0), (44100, 0.05)])
def test_a_long_song_is_read_in_windows_into_the_same_clips(tmp_path, rate, tolerance):
  """A song over `max_decode_seconds` (600 s; a DJ mix may be 3 hours) is read a window at a
  time, not whole: the same clips at the same offsets, exact where nothing is resampled,
  else different by over -80 dB only in the resampler's first and last 2 ms of each window."""
  path = tmp_path / "long.wav"
  soundfile.write(str(path), synth_song(10.3, rate, seed=1, channels=2), rate)

  def clips(max_decode_seconds):
    cut = prepare.ReadAndCutDoFn(SAMPLE_RATE_HZ, 1.0, 0.5, max_decode_seconds)
    outputs = list(cut.process((os.fsencode(path), b"a/long.wav", "a", "train")))
    examples = [tf.train.Example.FromString(x) for x in outputs if isinstance(x, bytes)]
    song, = [x.value for x in outputs if not isinstance(x, bytes)]
    offsets = [e.features.feature["offset_samples"].int64_list.value[0] for e in examples]
    audio = np.stack([e.features.feature["audio"].float_list.value for e in examples])
    return offsets, audio, song

  whole_offsets, whole, whole_song = clips(600.0)
  offsets, windowed, song = clips(3.0)   # four windows of 3 s
  assert offsets == whole_offsets == [i * SAMPLE_RATE_HZ // 2 for i in range(19)]
  assert song == whole_song and song["clips"] == 19 and song["seconds"] == pytest.approx(10.3)
  difference = np.abs(windowed - whole)
  assert difference.max() <= tolerance
  edges = np.r_[np.arange(50), SAMPLE_RATE_HZ - 50 + np.arange(50)]
  assert np.all(np.delete(difference, edges, axis=1) < 1e-4)


def test_patterns_name_files_relative_to_their_root(song_root):
  by_folder = prepare.list_input_files([str(song_root)])
  by_pattern = prepare.list_input_files([f"{song_root}/*/*.wav", f"{song_root}/*.flac"])
  assert by_pattern == by_folder
  recursive = prepare.list_input_files([f"{song_root}/**.wav"])
  assert recursive == [f for f in by_folder if f.path.endswith(".wav")]
  with pytest.raises(prepare.PrepareError, match="no audio files found"):
    prepare.list_input_files([f"{song_root}/*/*.mp3"])


def test_fma_tracks_split_alike_from_a_pattern_or_a_folder_at_any_level(tmp_path):
  """FMA's split key is the track's NNN/NNNNNN.mp3, so TFRecords prepared from a pattern over
  fma/ or fma/fma_small/ hold out exactly the tracks that the folder reader holds out."""
  for track in (2, 5, 140, 1040, 99001):
    path = tmp_path / "fma" / "fma_small" / f"{track // 1000:03d}" / f"{track:06d}.mp3"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
  keys = {tuple(sorted(f.relative_path for f in listed)) for listed in (
      prepare.list_input_files([f"{tmp_path}/fma/**.mp3"], "fma"),
      prepare.list_input_files([f"{tmp_path}/fma/fma_small/**.mp3"], "fma"),
      prepare.list_input_files([str(tmp_path / "fma")], "fma"),
      data.list_fma(tmp_path / "fma" / "fma_small"))}
  assert keys == {("000/000002.mp3", "000/000005.mp3", "000/000140.mp3", "001/001040.mp3",
                   "099/099001.mp3")}
  one_folder = [f.relative_path for f in prepare.list_input_files(
      [f"{tmp_path}/fma/fma_small/000/*.mp3"], "fma")]
  assert one_folder == ["000/000002.mp3", "000/000005.mp3", "000/000140.mp3"]


def test_gtzan_songs_split_and_are_labelled_alike_from_a_pattern_or_a_folder(tmp_path):
  """With --data_layout=gtzan a pattern's songs take their genre folder as the label and
  GTZAN's genre/file as the split key, as the folder reader gives them (not `genres`, and
  not a key that puts 17% of the songs on the other side of the split)."""
  for genre in ("blues", "rock"):
    for i in range(3):
      path = tmp_path / "gtzan" / "genres" / genre / f"{genre}.{i:05d}.au"
      path.parent.mkdir(parents=True, exist_ok=True)
      path.write_bytes(b"")
  (tmp_path / "gtzan" / "genres" / "rock" / "._rock.00000.au").write_bytes(b"")  # macOS twin
  listed = [[(f.relative_path, f.label) for f in files] for files in (
      prepare.list_input_files([f"{tmp_path}/gtzan/**.au"], "gtzan"),
      prepare.list_input_files([str(tmp_path / "gtzan")], "gtzan"),
      data.list_gtzan(tmp_path / "gtzan" / "genres"))]
  assert listed[0] == listed[1] == listed[2] == [
      (f"{genre}/{genre}.{i:05d}.au", genre) for genre in ("blues", "rock") for i in range(3)]


def test_songs_whose_names_are_not_utf8_are_prepared(tmp_path):
  """Beam's string coder refuses such names, so paths travel through the pipeline as bytes."""
  root = tmp_path / "songs"
  path = os.path.join(os.fsencode(root), b"M\xfcller", b"Caf\xe9.wav")
  os.makedirs(os.path.dirname(path))
  soundfile.write(path, synth_song(2.0), SAMPLE_RATE_HZ)
  result = prepare.prepare_tfrecord([str(root)], str(tmp_path / "out" / "clips"),
                                    example_secs=EXAMPLE_SECS, eval_split_fraction=0.0,
                                    sample_rate_hz=SAMPLE_RATE_HZ)
  assert result.manifest["files_read"] == 1 and result.manifest["clips"] == 2
  assert list(result.manifest["labels"]) == ["M\ufffdller"]
  records = _records(tmp_path / "out" / "clips")
  assert {r["source_path"] for r in records} == {b"M\xfcller/Caf\xe9.wav"}


def test_bad_settings_and_unknown_pipeline_options_are_refused(song_root, tmp_path):
  with pytest.raises(prepare.PrepareError, match=r"hop_secs=0\.0"):
    prepare.prepare_tfrecord([str(song_root)], str(tmp_path / "x"), hop_secs=0.0)
  with pytest.raises(prepare.PrepareError, match="example_secs=nan .must be a finite number"):
    prepare.prepare_tfrecord([str(song_root)], str(tmp_path / "x"), example_secs=float("nan"))
  with pytest.raises(prepare.PrepareError, match="hop_secs=inf .must be a finite number"):
    prepare.prepare_tfrecord([str(song_root)], str(tmp_path / "x"), hop_secs=float("inf"))
  with pytest.raises(prepare.PrepareError, match="eval_split_fraction=1.0"):
    prepare.prepare_tfrecord([str(song_root)], str(tmp_path / "x"), eval_split_fraction=1.0)
  with pytest.raises(prepare.PrepareError, match="unknown option.* --no_such_option"):
    prepare.pipeline_options_from(["--runner=DirectRunner", "--no_such_option=3"])
  assert not list(tmp_path.iterdir())
  # A folder as the prefix: the shards would land beside it, named after it.
  (tmp_path / "records").mkdir()
  for folder in (f"{tmp_path}/records/", f"{tmp_path}/new/", str(tmp_path / "records")):
    with pytest.raises(prepare.PrepareError) as error:
      prepare.prepare_tfrecord([str(song_root)], folder)
    assert str(error.value) == (f"{folder}: a folder, not a prefix of file names; give a prefix "
                                f"inside it, e.g. --output_tfrecord_path="
                                f"{folder.rstrip('/')}/clips")
  assert [p.name for p in tmp_path.iterdir()] == ["records"]


def test_existing_outputs_are_kept_unless_overwrite(song_root, tmp_path):
  prefix = str(tmp_path / "clips")
  prepare.prepare_tfrecord([f"{song_root}/low/*.wav"], prefix, example_secs=EXAMPLE_SECS,
                           num_shards=2)
  before = sorted(p.name for p in tmp_path.iterdir())
  assert before == ["clips-00000-of-00002", "clips-00001-of-00002", "manifest-clips.json"]
  with pytest.raises(prepare.PrepareError, match="already exists"):
    prepare.prepare_tfrecord([f"{song_root}/low/*.wav"], prefix, example_secs=EXAMPLE_SECS)
  assert sorted(p.name for p in tmp_path.iterdir()) == before
  result = prepare.prepare_tfrecord([f"{song_root}/low/*.wav"], prefix,
                                    example_secs=EXAMPLE_SECS, num_shards=1, overwrite=True)
  # The stale second shard of the first run is gone: PREFIX* reads only this run.
  assert sorted(p.name for p in tmp_path.iterdir()) == ["clips-00000-of-00001",
                                                         "manifest-clips.json"]
  assert len(_records(prefix)) == result.manifest["clips"] == 6


def test_an_interrupted_overwrite_keeps_the_old_set_and_leaves_no_staging(song_root, tmp_path,
                                                                          monkeypatch):
  """Ctrl-C inside a pipeline step (Beam wraps it in a RuntimeError) is raised as the
  KeyboardInterrupt it is; the earlier set stays whole and the staging folder goes."""
  prefix = str(tmp_path / "clips")
  prepare.prepare_tfrecord([f"{song_root}/low/*.wav"], prefix, example_secs=EXAMPLE_SECS,
                           num_shards=2)
  before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

  def interrupted(*args, **kwargs):
    raise KeyboardInterrupt
  monkeypatch.setattr(audio_io, "read_audio", interrupted)
  with pytest.raises(KeyboardInterrupt):
    prepare.prepare_tfrecord([f"{song_root}/high/*.wav"], prefix, example_secs=EXAMPLE_SECS,
                             num_shards=3, overwrite=True)
  assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_a_prefix_that_begins_another_leaves_the_other_alone(song_root, tmp_path):
  """`clips` and `clips-v2` are two sets: neither refuses nor overwrites the other."""
  songs = [f"{song_root}/low/*.wav"]
  prepare.prepare_tfrecord(songs, str(tmp_path / "clips-v2"), example_secs=EXAMPLE_SECS,
                           num_shards=2)
  other = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
  prepare.prepare_tfrecord(songs, str(tmp_path / "clips"), example_secs=EXAMPLE_SECS,
                           num_shards=2)
  prepare.prepare_tfrecord(songs, str(tmp_path / "clips"), example_secs=EXAMPLE_SECS,
                           num_shards=1, overwrite=True)
  assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if "v2" in p.name} == other
  assert sorted(p.name for p in tmp_path.iterdir() if "v2" not in p.name) == [
      "clips-00000-of-00001", "manifest-clips.json"]


def test_command_runs_in_parallel_worker_processes(song_root, tmp_path):
  prefix = tmp_path / "clips"
  result = subprocess.run(
      ["wave_music_vae_prepare_tfrecord", f"--input_audio_filepatterns={song_root}",
       f"--output_tfrecord_path={prefix}", f"--example_secs={EXAMPLE_SECS}", "--hop_secs=0.5",
       f"--eval_split_fraction={EVAL_FRACTION}", "--num_shards=3",
       "--direct_running_mode=multi_processing", "--direct_num_workers=2"],
      capture_output=True, text=True, timeout=300, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  clips = sum(_clips_per_song(s, EXAMPLE_SECS, 0.5) for s in SONG_SECS.values())
  assert f"wrote {clips} clips" in result.stdout
  assert f"{len(UNREADABLE)} unreadable file(s) skipped" in result.stdout
  manifest = json.loads((tmp_path / "manifest-clips.json").read_text())
  assert len(manifest["tfrecord_files"]) == 3
  records = _records(prefix)
  assert len(records) == manifest["clips"] == clips
  offsets = sorted(float(r["offset_seconds"]) for r in records
                   if r["source_path"] == b"low/song 0.wav")
  assert offsets == [0.0, 0.5, 1.0, 1.5, 2.0]
