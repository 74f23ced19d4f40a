"""Dataset layouts, the split by file, crops, skipping bad files, and TFRecords."""

import collections
import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile
import tensorflow as tf

from wave_music_vae import audio_io
from wave_music_vae import data

from conftest import SAMPLE_RATE_HZ, synth_song


def _touch_song(path: Path, seconds=1.0, seed=0):
  path.parent.mkdir(parents=True, exist_ok=True)
  soundfile.write(str(path), synth_song(seconds, seed=seed), SAMPLE_RATE_HZ)


def test_gtzan_original_and_repacked_layouts(tmp_path):
  for genre in ("jazz", "rock"):
    for i in range(2):
      _touch_song(tmp_path / "orig" / "genres" / genre / f"{genre}.{i:05d}.au")
      _touch_song(tmp_path / "repack" / "genres_original" / genre / f"{genre}.{i:05d}.wav")
  for root in (tmp_path / "orig", tmp_path / "repack"):
    files = data.list_gtzan(root)
    assert [f.label for f in files] == ["jazz", "jazz", "rock", "rock"]
    assert all(Path(f.path).is_file() for f in files)


def test_fma_layout_reads_genres_from_tracks_csv(tmp_path):
  _touch_song(tmp_path / "fma_small" / "000" / "000002.mp3")
  _touch_song(tmp_path / "fma_small" / "001" / "001040.mp3")
  meta = tmp_path / "fma_metadata"
  meta.mkdir()
  (meta / "tracks.csv").write_text(
      ",album,track,track\n,title,genre_top,title\ntrack_id,,,\n"
      "2,A,Hip-Hop,x\n1040,B,Rock,y\n")
  files = data.list_fma(tmp_path)
  assert [(Path(f.path).name, f.label) for f in files] == [("000002.mp3", "Hip-Hop"),
                                                          ("001040.mp3", "Rock")]
  # Given fma_small/ itself, the same tracks, labels and split keys: a track's split does
  # not depend on which level of the dataset the user names.
  from_small = data.list_fma(tmp_path / "fma_small")
  assert [(f.relative_path, f.label) for f in from_small] == [
      (f.relative_path, f.label) for f in files] == [("000/000002.mp3", "Hip-Hop"),
                                                     ("001/001040.mp3", "Rock")]
  # fma_medium holds every fma_small track again: each track is listed once, so none can
  # fall on both sides of the split.
  for relative in ("000/000002.mp3", "001/001040.mp3", "001/001041.mp3"):
    _touch_song(tmp_path / "fma_medium" / relative)
  files = data.list_fma(tmp_path)
  assert [(f.relative_path, Path(f.path).parts[-3]) for f in files] == [
      ("000/000002.mp3", "fma_medium"), ("001/001040.mp3", "fma_medium"),  # sorted first
      ("001/001041.mp3", "fma_medium")]


def test_folder_labels_are_first_subfolder(tmp_path):
  _touch_song(tmp_path / "top.wav")
  _touch_song(tmp_path / "album" / "disc 1" / "song é.flac")
  (tmp_path / "notes.txt").write_text("not audio")
  files = data.list_folder(tmp_path)
  assert [(f.relative_path, f.label) for f in files] == [("album/disc 1/song é.flac", "album"),
                                                        ("top.wav", "")]


def test_symlinked_folders_are_followed_once_and_dangling_links_are_counted(tmp_path,
                                                                           tiny_config):
  library = tmp_path / "library"
  _touch_song(library / "rock" / "a.wav")
  _touch_song(tmp_path / "elsewhere" / "jazz" / "b.wav", seed=1)
  (library / "jazz").symlink_to(tmp_path / "elsewhere" / "jazz", target_is_directory=True)
  (library / "rock" / "loop").symlink_to(library, target_is_directory=True)   # a cycle
  (library / "rock" / "gone.wav").symlink_to(tmp_path / "deleted.wav")       # dangling
  files = data.list_folder(library)
  assert sorted((f.relative_path, f.label) for f in files) == [
      ("jazz/b.wav", "jazz"), ("rock/a.wav", "rock"), ("rock/gone.wav", "rock")]
  skipped = data.SkippedFiles()
  clips = list(data.folder_dataset(files, tiny_config, "eval", skipped, batch_size=8))
  assert sum(len(batch["audio"]) for batch in clips) == 2
  assert list(skipped.causes) == [str(library / "rock" / "gone.wav")]


def test_a_song_linked_into_two_folders_is_listed_once(tmp_path):
  """Two paths to one song would be split (and labelled) independently: trained on under
  one name, evaluated on under the other."""
  library = tmp_path / "library"
  for seed, name in enumerate(("song16.wav", "other.wav")):
    _touch_song(library / "Rock" / name, seed=seed)
  (library / "Favourites").mkdir()
  (library / "Favourites" / "fav7.wav").symlink_to(library / "Rock" / "song16.wav")
  files = data.list_folder(library)
  assert [(f.relative_path, f.label) for f in files] == [("Favourites/fav7.wav", "Favourites"),
                                                        ("Rock/other.wav", "Rock")]


@pytest.mark.parametrize("real, alias", [("Rock", "Zed"), ("Zed", "Rock")])
def test_a_folder_linked_twice_is_listed_under_its_first_name_in_sorted_order(tmp_path, real,
                                                                             alias):
  """Which of two names a song gets (its label and split) does not depend on the file
  system's directory order."""
  _touch_song(tmp_path / real / "a.wav")
  (tmp_path / alias).symlink_to(tmp_path / real, target_is_directory=True)
  assert [(f.relative_path, f.label) for f in data.list_folder(tmp_path)] == [("Rock/a.wav",
                                                                              "Rock")]


def test_hidden_files_and_macos_metadata_are_not_songs(tmp_path):
  _touch_song(tmp_path / "album" / "song.mp3")
  for hidden in ("album/._song.mp3", ".Trash-1000/old.wav", "__MACOSX/album/._song.mp3",
                 ".cache/x.flac"):
    (tmp_path / hidden).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / hidden).write_bytes(b"\0\5\26\7")
  assert [f.relative_path for f in data.list_folder(tmp_path)] == ["album/song.mp3"]


def test_gtzan_layout_refuses_folders_that_are_not_genres(tmp_path):
  """A root one level above the dataset would otherwise label every song with its own
  folder's name (and merge two copies of GTZAN)."""
  for copy in ("gtzan_au", "gtzan_kaggle"):
    _touch_song(tmp_path / copy / "genres" / "blues" / "blues.00000.wav")
  with pytest.raises(data.DataError) as error:
    data.list_gtzan(tmp_path)
  assert str(error.value) == (
      f"{tmp_path}: none of its sub-folders (gtzan_au, gtzan_kaggle) is a GTZAN genre; give the "
      "folder that holds genres/ or genres_original/ (for folders of your own, the folder "
      "layout: --hparams=data_layout=folder to train, --data_layout=folder for "
      "wave_music_vae_attributes)")
  flat = tmp_path / "flat"
  _touch_song(flat / "blues.00000.wav")
  with pytest.raises(data.DataError, match=r"flat: no genre sub-folders; the gtzan layout reads"):
    data.list_gtzan(flat)
  assert [f.label for f in data.list_gtzan(tmp_path / "gtzan_au")] == ["blues"]
  _touch_song(tmp_path / "capitals" / "Blues" / "blues.00000.wav")   # a repack's spelling
  assert [f.label for f in data.list_gtzan(tmp_path / "capitals")] == ["Blues"]


@pytest.mark.parametrize("content, cause", [
    (b"", r"not FMA's tracks.csv \(0 line\(s\)"),
    (b",album,track\n,title,genre_top\n", r"not FMA's tracks.csv \(2 line\(s\)"),
    (",album,track\n,title,genre_top\ntrack_id,,\n2,Caf\u00e9,Rock\n".encode("latin-1"),
     r"cannot read FMA's track metadata \('utf-8' codec can't decode")])
def test_an_unreadable_fma_tracks_csv_is_named(tmp_path, content, cause):
  _touch_song(tmp_path / "fma_small" / "000" / "000002.mp3")
  (tmp_path / "fma_metadata").mkdir()
  (tmp_path / "fma_metadata" / "tracks.csv").write_bytes(content)
  with pytest.raises(data.DataError, match=r"fma_metadata/tracks.csv: " + cause):
    data.list_fma(tmp_path)


def test_fma_tracks_without_their_metadata_are_listed_with_a_warning(tmp_path, caplog):
  _touch_song(tmp_path / "fma_small" / "000" / "000002.mp3")
  with caplog.at_level("WARNING"):
    files = data.list_fma(tmp_path / "fma_small" / "000")   # one level too deep
  assert [(f.relative_path, f.label) for f in files] == [("000/000002.mp3", "")]
  assert f"{tmp_path / 'fma_small' / '000'}: no fma_metadata/tracks.csv in it or beside it: " \
      "its tracks have no genre labels" in caplog.text


def test_fma_names_that_are_digits_only_to_unicode_are_not_track_ids(tmp_path):
  _touch_song(tmp_path / "fma_small" / "000" / "\u00b2.mp3")
  _touch_song(tmp_path / "fma_small" / "000" / "000002.mp3")
  assert [f.relative_path for f in data.list_fma(tmp_path)] == ["000/000002.mp3",
                                                                 "fma_small/000/\u00b2.mp3"]


def test_split_is_stable_disjoint_and_near_the_fraction():
  paths = [f"genre/song{i}.wav" for i in range(2000)]
  splits = [data.split_of(p, 0.1) for p in paths]
  assert splits == [data.split_of(p, 0.1) for p in paths]
  assert 0.07 < splits.count("eval") / len(paths) < 0.13
  assert data.split_of("a/b.wav", 0.0) == "train"


def test_the_shipped_gtzan_fault_filtered_split_is_the_published_one():
  """Kereliuk, Sturm & Larsen (2015): 443 train, 197 valid, 290 test; 70 faulty files in none."""
  lists = json.loads(data.GTZAN_FAULT_FILTERED.read_text())
  parts = [set(lists[part]) for part in ("train", "valid", "test")]
  assert [len(lists[part]) for part in ("train", "valid", "test")] == [443, 197, 290]
  assert [len(part) for part in parts] == [443, 197, 290]      # no name twice
  assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
  every_file = {f"{genre}.{i:05d}" for genre in data.GTZAN_GENRES for i in range(100)}
  assert set.union(*parts) <= every_file and len(every_file - set.union(*parts)) == 70
  assert "Kereliuk" in lists["citation"] and "torchaudio" in lists["source"]


def _official(config):
  return dataclasses.replace(config, split_method="official")


def test_gtzan_official_split_is_the_fault_filtered_one(tmp_path, tiny_config, caplog):
  """Train: its train files; eval: its test files; its valid files and the faulty ones: none.
  Files match by stem, whatever their extension or the case of the genre."""
  for relative in ("blues/blues.00029.wav",    # train
                   "blues/blues.00000.wav",    # valid
                   "blues/blues.00012.wav",    # test
                   "jazz/jazz.00033.wav",      # faulty: in no list
                   "Rock/Rock.00000.au"):      # train, spelled with a capital
    _touch_song(tmp_path / "genres_original" / relative)
  source = data.DatasetSource(str(tmp_path), "gtzan")
  with caplog.at_level("WARNING"):
    train = source.files("train", _official(tiny_config))
    held_out = source.files("eval", _official(tiny_config))
  assert [f.relative_path for f in train] == ["Rock/Rock.00000.au", "blues/blues.00029.wav"]
  assert [f.relative_path for f in held_out] == ["blues/blues.00012.wav"]
  assert caplog.text.count("in neither split") == 1
  assert (f"{tmp_path}: 1 validation file(s) and 1 file(s) that gtzan's official split does "
          "not list are in neither split (split_method=official)") in caplog.text
  # The default splits every file by its hash, as before.
  hashed = {f.relative_path for split in data.SPLITS for f in source.files(split, tiny_config)}
  assert len(hashed) == 5


def _write_fma_tracks_csv(root: Path, rows: str):
  """FMA's tracks.csv: three header rows, (set, split) and (track, genre_top) among them."""
  (root / "fma_metadata").mkdir(parents=True)
  (root / "fma_metadata" / "tracks.csv").write_text(
      ",album,set,set,track\n,title,split,subset,genre_top\ntrack_id,,,,\n" + rows)


def test_fma_official_split_follows_tracks_csv(tmp_path, tiny_config, caplog):
  for track in (2, 5, 10, 20, 30):
    _touch_song(tmp_path / "fma_small" / "000" / f"{track:06d}.mp3", seed=track)
  _write_fma_tracks_csv(tmp_path, "2,A,training,small,Rock\n5,B,validation,small,Rock\n"
                                  "10,C,test,small,Folk\n20,D,,small,Folk\n")   # 30: unlisted
  for root in (tmp_path, tmp_path / "fma_small"):   # either level, as the labels
    source = data.DatasetSource(str(root), "fma")
    with caplog.at_level("WARNING"):
      caplog.clear()
      assert [(f.relative_path, f.label) for f in source.files("train", _official(tiny_config))
              ] == [("000/000002.mp3", "Rock")]
      assert [(f.relative_path, f.label) for f in source.files("eval", _official(tiny_config))
              ] == [("000/000010.mp3", "Folk")]
    assert caplog.text.count("in neither split") == 1
    assert (f"{root}: 1 validation file(s) and 2 file(s) that fma's official split does not "
            "list are in neither split") in caplog.text


def test_fma_official_split_without_tracks_csv_names_the_file(tmp_path, tiny_config):
  _touch_song(tmp_path / "fma_small" / "000" / "000002.mp3")
  with pytest.raises(data.DataError) as error:
    data.DatasetSource(str(tmp_path), "fma").files("train", _official(tiny_config))
  assert str(error.value) == (
      f"{tmp_path}/fma_metadata/tracks.csv: no such file (nor beside {tmp_path}): "
      "split_method=official reads FMA's split from it (give the folder that holds "
      "fma_metadata/)")
  (tmp_path / "fma_metadata").mkdir()
  (tmp_path / "fma_metadata" / "tracks.csv").write_text(
      ",album,track\n,title,genre_top\ntrack_id,,\n2,A,Rock\n")   # no (set, split) column
  with pytest.raises(data.DataError, match=r"fma_metadata/tracks.csv: no \(set, split\) column"):
    data.DatasetSource(str(tmp_path), "fma").files("train", _official(tiny_config))


def test_a_folder_of_your_own_has_no_official_split(song_folder, tiny_config):
  with pytest.raises(data.DataError) as error:
    data.DatasetSource(str(song_folder), "folder").dataset(_official(tiny_config), "train")
  assert str(error.value) == (
      f"{song_folder}: split_method=official, but the folder layout has no official split "
      "(only gtzan and fma have one); use split_method=hash for folders of your own")


def test_random_and_fixed_crops():
  audio = tf.range(1000, dtype=tf.float32)
  random = data.random_crops(audio, 100, 5).numpy()
  assert random.shape == (5, 100)
  assert np.all(np.diff(random, axis=1) == 1.0)  # contiguous windows of the song
  fixed = data.fixed_crops(audio, 100, 4).numpy()
  np.testing.assert_array_equal(fixed, [np.arange(start, start + 100)
                                        for start in (0, 300, 600, 900)])
  short = data.fixed_crops(tf.ones([30]), 100, 4).numpy()
  assert short.shape == (1, 100) and short[0, :30].sum() == 30 and short[0, 30:].sum() == 0


@pytest.mark.parametrize("edge_fraction", [0.0, 0.4, 1.0])
def test_random_crops_take_the_songs_edges_at_the_configured_rate(edge_fraction):
  audio = tf.range(100_000, dtype=tf.float32)
  tf.random.set_seed(0)
  starts = tf.function(lambda a: data.random_crops(a, 1000, 4000, edge_fraction))(audio)[:, 0]
  starts = starts.numpy()
  first, last = np.mean(starts == 0), np.mean(starts == 99_000)
  # Uniform starts hit an exact edge with probability 2 / 99,001: the edges come from the
  # fraction alone, half each (4,000 draws: binomial standard error under 0.008).
  assert first == pytest.approx(edge_fraction / 2, abs=0.03)
  assert last == pytest.approx(edge_fraction / 2, abs=0.03)
  inner = starts[(starts > 0) & (starts < 99_000)]
  assert len(inner) == pytest.approx((1 - edge_fraction) * 4000, abs=150)
  if len(inner):  # the rest still spread over the whole song
    assert inner.min() < 10_000 and inner.max() > 89_000


def test_folder_training_crops_follow_the_config_edge_fraction(tmp_path, tiny_config):
  song = synth_song(10.0, seed=3)
  _touch_song(tmp_path / "a" / "song.wav", seconds=10.0, seed=3)
  config = dataclasses.replace(tiny_config, edge_crop_fraction=1.0, clips_per_file=8)
  files = data.list_folder(tmp_path)
  batch = next(iter(data.folder_dataset(files, config, "train", data.SkippedFiles())))
  clip = config.clip_samples
  for audio in batch["audio"].numpy():
    assert (np.allclose(audio, song[:clip], atol=1e-4)
            or np.allclose(audio, song[-clip:], atol=1e-4))


@pytest.mark.parametrize("samples,count", [(8_291_993, 4), (9_557_296, 16), (11_698_578, 7)])
def test_fixed_crops_of_long_songs_in_a_graph_are_whole_clips(samples, count):
  # Songs of 6 to 9 minutes at 22050 Hz, where float32 start positions once rounded
  # the last crop one sample past the end inside tf.data (graph mode).
  crops = tf.function(lambda audio: data.fixed_crops(audio, 88200, count))
  starts = crops(tf.range(samples, dtype=tf.float32))[:, 0].numpy().astype(np.int64)
  assert len(starts) == count
  assert starts[0] == 0 and starts[-1] == samples - 88200
  assert np.all(np.diff(starts) > 0)


def test_folder_dataset_skips_and_counts_bad_files(tmp_path, tiny_config):
  for i in range(3):
    _touch_song(tmp_path / "a" / f"s{i}.wav", seconds=2.0, seed=i)
  (tmp_path / "a" / "broken.wav").write_bytes(b"RIFF\x00\x00garbage")
  (tmp_path / "a" / "empty.mp3").write_bytes(b"")
  for name, value in (("nan.wav", np.nan), ("unscaled.wav", 1e30)):
    soundfile.write(str(tmp_path / "a" / name), np.full(8000, value, np.float32), 8000,
                    subtype="FLOAT")
  source = data.DatasetSource(str(tmp_path), "folder")
  files = source.files("train", tiny_config)   # eval_fraction 0: every song
  assert len(files) == 7
  dataset = data.folder_dataset(files, tiny_config, "eval", source.skipped, batch_size=2)
  clips = np.concatenate([b["audio"].numpy() for b in dataset])
  assert clips.shape == (3 * 2, tiny_config.clip_samples)  # 2 s songs -> 2 fixed 1 s crops
  assert np.all(np.isfinite(clips)) and np.max(np.abs(clips)) <= 1.0
  assert len(source.skipped) == 4
  for name in ("broken.wav", "empty.mp3", "nan.wav", "unscaled.wav"):
    assert any(name in p for p in source.skipped.causes), name
  train = data.folder_dataset(files, tiny_config, "train", source.skipped)
  batch = next(iter(train.take(1)))
  assert batch["audio"].shape == (tiny_config.batch_size, tiny_config.clip_samples)
  assert set(batch["label"].numpy()) == {b"a"}


def _latin1_named_songs(root: Path):
  """Songs named in Latin-1 bytes, as old rips are: 'Café del Mar.wav' in 'Müller/'."""
  root_bytes = os.fsencode(root)
  for i, relative in enumerate((b"M\xfcller/Caf\xe9 del Mar.wav", b"plain/song.wav")):
    path = os.path.join(root_bytes, relative)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    soundfile.write(path, synth_song(2.0, seed=i), SAMPLE_RATE_HZ)


def test_songs_whose_names_are_not_utf8_are_read_and_labelled(tmp_path, tiny_config):
  _latin1_named_songs(tmp_path)
  files = data.list_folder(tmp_path)
  assert [f.label for f in files] == ["M\ufffdller", "plain"]  # printable labels
  assert os.fsencode(files[0].path).endswith(b"M\xfcller/Caf\xe9 del Mar.wav")
  assert {data.split_of(f.relative_path, 0.5) for f in files} <= {"train", "eval"}
  skipped = data.SkippedFiles()
  batches = list(data.folder_dataset(files, tiny_config, "eval", skipped, batch_size=8))
  assert len(skipped) == 0
  assert sum(len(b["audio"]) for b in batches) == 4   # two 2 s songs, two 1 s crops each
  assert sorted(set(np.concatenate([b["label"].numpy() for b in batches]))) == [
      "M\ufffdller".encode(), b"plain"]
  example = data.make_example(np.zeros(4), SAMPLE_RATE_HZ, files[0].label, files[0].relative_path)
  parsed = data.parse_example(example.SerializeToString())
  assert parsed["source_path"].numpy() == b"M\xfcller/Caf\xe9 del Mar.wav"


def test_folder_with_no_readable_audio_fails_early(tmp_path):
  (tmp_path / "x.wav").write_text("text, not audio")
  files = data.list_folder(tmp_path)
  with pytest.raises(data.DataError, match="no readable audio among 1 file"):
    data.first_readable(files, SAMPLE_RATE_HZ, data.SkippedFiles())


def test_tfrecord_round_trip(tmp_path, tiny_config):
  path = tmp_path / "clips.tfrecord-00000-of-00001"
  clips = [synth_song(1.5, seed=s) for s in range(3)]
  with tf.io.TFRecordWriter(str(path)) as writer:
    for i, clip in enumerate(clips):
      split = "eval" if i == 2 else "train"
      writer.write(data.make_example(clip, SAMPLE_RATE_HZ, f"label{i}", f"s{i}.wav", 0.0,
                                     split).SerializeToString())
  parsed = data.parse_example(next(iter(tf.data.TFRecordDataset(str(path)))))
  np.testing.assert_allclose(parsed["audio"], clips[0])
  assert parsed["label"].numpy() == b"label0" and parsed["sample_rate_hz"].numpy() == SAMPLE_RATE_HZ
  eval_batches = list(data.tfrecord_dataset(str(tmp_path / "clips.tfrecord*"), tiny_config, "eval"))
  assert len(eval_batches) == 1 and eval_batches[0]["label"].numpy().tolist() == [b"label2"]
  fixed = data.fixed_crops(tf.constant(clips[2]), tiny_config.clip_samples, 1)[0]
  np.testing.assert_allclose(eval_batches[0]["audio"][0], fixed)
  with_source = list(data.tfrecord_dataset(str(tmp_path / "clips.tfrecord*"), tiny_config,
                                           "eval", with_source=True))
  assert with_source[0]["source"].numpy().tolist() == [b"s2.wav"]


def test_clips_can_name_the_song_they_were_cut_from(song_folder, tiny_config):
  """`with_source`: each clip carries its file's relative path, in the same batches."""
  files = data.list_folder(song_folder)
  batches = list(data.folder_dataset(files, tiny_config, "eval", data.SkippedFiles(),
                                     batch_size=4, with_source=True))
  sources = np.concatenate([b["source"].numpy() for b in batches])
  labels = np.concatenate([b["label"].numpy() for b in batches])
  assert sorted(set(sources)) == sorted(f.relative_path.encode() for f in files)
  assert len(sources) == 3 * len(files)   # three 1 s fixed crops of each 3 s song
  assert all(source.startswith(label + b"/") for source, label in zip(sources, labels))
  assert "source" not in next(iter(data.folder_dataset(files, tiny_config, "eval",
                                                       data.SkippedFiles())))


def test_tfrecord_at_another_rate_is_rejected(tmp_path, tiny_config):
  path = tmp_path / "r.tfrecord"
  with tf.io.TFRecordWriter(str(path)) as writer:
    writer.write(data.make_example(np.zeros(16000), 16000, split="eval").SerializeToString())
  with pytest.raises(data.DataError, match="r.tfrecord: clips are at 16000 Hz, not the config"):
    data.tfrecord_dataset(str(path), tiny_config, "eval")


def _write_records(path, clip_seconds, rate=SAMPLE_RATE_HZ):
  with tf.io.TFRecordWriter(str(path)) as writer:
    writer.write(data.make_example(np.zeros(int(clip_seconds * rate)), rate).SerializeToString())


def test_every_file_a_pattern_matches_is_checked_and_named(tmp_path, tiny_config):
  _write_records(tmp_path / "clips-00000-of-00002", 1.0)
  _write_records(tmp_path / "clips-00001-of-00002", 1.0)
  # wave_music_vae_prepare_tfrecord's own manifest beside the shards is passed over.
  (tmp_path / "manifest-clips.json").write_text('{"clips": 2}')
  assert len(list(data.tfrecord_dataset(str(tmp_path / "*"), tiny_config, "train").take(1))) == 1
  (tmp_path / "notes.txt").write_text("not a TFRecord " * 20)
  with pytest.raises(data.DataError) as error:
    data.tfrecord_dataset(str(tmp_path / "*"), tiny_config, "train")
  assert str(error.value) == (f"{tmp_path / 'notes.txt'}: not a TFRecord of clips as prepared "
                              "by wave_music_vae_prepare_tfrecord (DataLossError)")
  (tmp_path / "notes.txt").unlink()
  _write_records(tmp_path / "clips-16k", 1.0, rate=16000)  # sorts after the good shards
  with pytest.raises(data.DataError, match=r"clips-16k: clips are at 16000 Hz, not the config"):
    data.tfrecord_dataset(str(tmp_path / "clips*"), tiny_config, "train")


def test_each_shard_is_read_once_for_its_check_until_it_changes(tmp_path, tiny_config):
  """Training, its start-up check and its eval pass each build a dataset of the same shards
  (which may be thousands of remote files): each shard's first clip is read once."""
  for shard in range(2):
    _write_records(tmp_path / f"clips-0000{shard}-of-00002", 1.0)
  reads_before = data._first_clip_format.cache_info().misses
  for split in ("train", "train", "eval"):
    data.tfrecord_dataset(str(tmp_path / "clips*"), tiny_config, split)
  assert data._first_clip_format.cache_info().misses == reads_before + 2
  _write_records(tmp_path / "clips-00001-of-00002", 1.0, rate=16000)  # rewritten in place
  with pytest.raises(data.DataError, match=r"clips-00001-of-00002: clips are at 16000 Hz"):
    data.tfrecord_dataset(str(tmp_path / "clips*"), tiny_config, "train")


def test_tfrecord_clips_shorter_than_the_config_clip_are_refused(tmp_path, tiny_config):
  _write_records(tmp_path / "half-00000-of-00001", 0.5)
  with pytest.raises(data.DataError) as error:
    data.tfrecord_dataset(str(tmp_path / "half*"), tiny_config, "train")
  assert str(error.value) == (
      f"{tmp_path / 'half-00000-of-00001'}: clips are 0.5 s, shorter than the config's "
      f"{tiny_config.clip_seconds:g} s clips; prepare them again with "
      f"--example_secs={tiny_config.clip_seconds:g}")


def test_a_folder_of_tfrecord_shards_is_pointed_at_its_pattern(tmp_path, tiny_config):
  _write_records(tmp_path / "my-clips-00000-of-00002", 1.0)
  with pytest.raises(data.DataError) as error:
    data.DatasetSource(str(tmp_path), "folder").dataset(tiny_config, "train")
  assert str(error.value) == (f"{tmp_path}: no audio files found for layout 'folder'; it holds "
                              f"TFRecord files: pass them as a pattern, e.g. "
                              f"--examples_path='{tmp_path / 'my-clips'}*'")
  with pytest.raises(data.DataError) as error:  # the prefix without its *
    data.tfrecord_dataset(str(tmp_path / "my-clips"), tiny_config, "train")
  assert str(error.value) == (f"{tmp_path / 'my-clips'}: no such folder of songs, and no "
                              f"TFRecord files match (did you mean the prefix "
                              f"'{tmp_path / 'my-clips'}*'?)")


def test_missing_pattern_is_a_data_error(tmp_path, tiny_config):
  with pytest.raises(data.DataError, match="no TFRecord files match"):
    data.tfrecord_dataset(str(tmp_path / "none*"), tiny_config, "train")
  # A folder matched by the pattern is not a TFRecord file.
  (tmp_path / "records").mkdir()
  with pytest.raises(data.DataError, match="records: no TFRecord files match"):
    data.tfrecord_dataset(str(tmp_path / "records"), tiny_config, "train")
  with pytest.raises(data.DataError, match="split 'test'; valid: train, eval"):
    data.tfrecord_dataset(str(tmp_path / "none*"), tiny_config, "test")


def test_a_song_or_a_stray_file_as_examples_path_says_what_it_is(tmp_path, tiny_config):
  song = tmp_path / "one song.wav"
  _touch_song(song)
  for layout in ("folder", "gtzan"):
    with pytest.raises(data.DataError) as error:
      data.DatasetSource(str(song), layout).dataset(tiny_config, "train")
    assert str(error.value) == (f"{song}: an audio file, not a folder of songs (put it in a "
                                "folder and give the folder)")
    with pytest.raises(data.DataError, match="an audio file, not a folder of songs"):
      data.list_audio_files(song, layout)
  notes = tmp_path / "notes.txt"
  notes.write_text("not a TFRecord, not a folder " * 10)
  with pytest.raises(data.DataError) as error:
    data.DatasetSource(str(notes), "folder").dataset(tiny_config, "train")
  assert str(error.value) == (f"{notes}: not a TFRecord of clips as prepared by "
                              "wave_music_vae_prepare_tfrecord (DataLossError)")
  with pytest.raises(data.DataError, match=f"{notes}: not a folder"):
    data.list_audio_files(notes, "folder")
  with pytest.raises(data.DataError) as error:
    data.DatasetSource(str(tmp_path / "*.wav"), "folder").dataset(tiny_config, "train")
  assert str(error.value) == (f"{tmp_path / '*.wav'}: a pattern of audio files; give the folder "
                              "that holds them (every song below it is read)")
  # A TFRecord pattern where only a folder of songs will do (wave_music_vae_attributes).
  with pytest.raises(data.DataError) as error:
    data.list_audio_files(tmp_path / "clips*", "folder")
  assert str(error.value) == (
      f"{tmp_path / 'clips*'}: a file pattern, not a folder of songs (this command reads songs "
      "from a folder; TFRecords are read by wave_music_vae_train and _evaluate)")


def test_long_files_are_read_in_windows(tmp_path):
  path = tmp_path / "mix.flac"
  soundfile.write(str(path), synth_song(10.0), SAMPLE_RATE_HZ)
  files = data.list_folder(tmp_path)
  for training in (True, False):
    songs = data.decoded_songs(files, SAMPLE_RATE_HZ, data.SkippedFiles(), training,
                               max_decode_seconds=2.0)
    (audio, _), = list(songs)
    assert audio.shape[0] == 2 * SAMPLE_RATE_HZ
  whole, = list(data.decoded_songs(files, SAMPLE_RATE_HZ, data.SkippedFiles()))
  assert whole[0].shape[0] == 10 * SAMPLE_RATE_HZ


def test_cache_keeps_songs_and_each_window_of_a_long_file(tmp_path, monkeypatch):
  """`--cache_decoded_audio` decodes a song once, and a file over the window length window
  by window, over a grid that covers all of it (tf.data's cache replayed the first window
  read, so training saw only that part of a long mix)."""
  soundfile.write(str(tmp_path / "song.wav"), synth_song(1.0), SAMPLE_RATE_HZ)
  t = np.arange(10 * SAMPLE_RATE_HZ) / SAMPLE_RATE_HZ   # The level says where a window lies.
  soundfile.write(str(tmp_path / "mix.wav"), (0.01 + 0.09 * t).astype(np.float32),
                  SAMPLE_RATE_HZ, subtype="FLOAT")
  (tmp_path / "broken.wav").write_bytes(b"RIFF not audio")
  reads, probes = collections.Counter(), collections.Counter()
  read_audio, duration_seconds = audio_io.read_audio, audio_io.duration_seconds
  monkeypatch.setattr(audio_io, "read_audio", lambda path, *args: reads.update([Path(path).name])
                      or read_audio(path, *args))
  monkeypatch.setattr(audio_io, "duration_seconds", lambda path: probes.update(
      [Path(path).name]) or duration_seconds(path))
  files = data.list_folder(tmp_path)
  skipped = data.SkippedFiles()
  songs = data.decoded_songs(files, SAMPLE_RATE_HZ, skipped, training=True, seed=3,
                             max_decode_seconds=2.0, with_source=True, cache=True)
  window_starts = set()
  for _ in range(40):
    for audio, _, source in songs:
      if source == b"mix.wav":
        assert audio.shape[0] == 2 * SAMPLE_RATE_HZ
        window_starts.add(round((float(audio[0]) - 0.01) / 0.09, 2))   # Seconds.
      else:
        assert audio.shape[0] == SAMPLE_RATE_HZ
  # Windows of 2 s every 1 s: 0, 1, ..., 8 s, each read once however often it was drawn.
  assert window_starts == set(np.arange(9.0)) and reads["mix.wav"] == 9
  assert reads["song.wav"] == 1 and reads["broken.wav"] == 1 and len(skipped) == 1
  assert probes == collections.Counter({"song.wav": 1, "mix.wav": 1, "broken.wav": 1})


def test_cache_keeps_a_song_whose_length_no_header_gives(tmp_path, monkeypatch):
  """A FLAC written to a pipe says no length: read from its start, and kept when that read
  turns out to be the whole song."""
  soundfile.write(str(tmp_path / "song.wav"), synth_song(1.0), SAMPLE_RATE_HZ)
  monkeypatch.setattr(audio_io, "duration_seconds", lambda path: None)
  reads = collections.Counter()
  read_audio = audio_io.read_audio
  monkeypatch.setattr(audio_io, "read_audio", lambda path, *args: reads.update([Path(path).name])
                      or read_audio(path, *args))
  songs = data.decoded_songs(data.list_folder(tmp_path), SAMPLE_RATE_HZ, data.SkippedFiles(),
                             training=True, max_decode_seconds=2.0, cache=True)
  for _ in range(3):
    (audio, _), = list(songs)
    assert audio.shape[0] == SAMPLE_RATE_HZ
  assert reads["song.wav"] == 1


def test_eval_takes_its_clips_through_the_whole_of_a_long_file(tmp_path, tiny_config, monkeypatch):
  """A file over MAX_DECODE_SECONDS gives eval (the evaluator, attribute vectors) clips spread
  from its first to its last clip, as a shorter file does, not only from a middle window."""
  monkeypatch.setattr(data, "MAX_DECODE_SECONDS", 5.0)
  rate, seconds = SAMPLE_RATE_HZ, 20
  # Each second its own tone (200 + 40 * second Hz), so a clip's position can be read off.
  t = np.arange(seconds * rate) / rate
  song = 0.5 * np.sin(2 * np.pi * (200 + 40 * np.floor(t)) * t).astype(np.float32)
  soundfile.write(str(tmp_path / "long.wav"), song, rate, subtype="FLOAT")
  files = data.list_folder(tmp_path)
  config = dataclasses.replace(tiny_config, clips_per_file=4)
  (batch,) = list(data.folder_dataset(files, config, "eval", data.SkippedFiles(), batch_size=8))
  whole = data.fixed_crops(tf.constant(song), config.clip_samples, 4).numpy()
  np.testing.assert_allclose(batch["audio"].numpy(), whole, atol=1e-4)   # 0, 6.3, 12.7, 19 s


def test_training_decodes_songs_as_it_needs_them_not_all_first(tmp_path, tiny_config,
                                                                 monkeypatch):
  """Files are shuffled before decoding: the first batch needs a few songs decoded, not the
  whole training set held in memory (a song shuffle after decoding buffered every one)."""
  for i in range(40):
    soundfile.write(str(tmp_path / f"song_{i:02d}.wav"), synth_song(1.5, seed=i), SAMPLE_RATE_HZ)
  decoded = []
  read_audio = audio_io.read_audio
  monkeypatch.setattr(audio_io, "read_audio", lambda path, *args: decoded.append(path) or
                      read_audio(path, *args))
  config = dataclasses.replace(tiny_config, clips_per_file=2, shuffle_buffer_clips=4,
                               batch_size=2)
  files = data.list_folder(tmp_path)
  batches = iter(data.folder_dataset(files, config, "train", data.SkippedFiles()))
  next(batches)
  assert len(decoded) < 16
  first_pass = {next(batches)["label"].shape[0] for _ in range(60)}   # 120 clips: 60+ songs
  assert first_pass == {2} and len(set(decoded)) == 40    # and in time every song is read


def test_an_eval_stream_cut_short_still_covers_every_label(tmp_path, tiny_config):
  """`--eval_num_batches` stops the train command's eval pass early: the eval stream takes
  its songs round-robin over labels, so its first batches are not all one label's."""
  for label, count in (("A", 7), ("B", 4)):
    (tmp_path / label).mkdir()
    for i in range(count):
      soundfile.write(str(tmp_path / label / f"{i}.wav"), synth_song(1.0, seed=i),
                      SAMPLE_RATE_HZ)
  files = data.list_folder(tmp_path)
  assert [f.label for f in data.label_interleaved(files)] == list("ABABABABAAA")
  config = dataclasses.replace(tiny_config, eval_fraction=0.999999)   # every song held out
  first = next(iter(data.DatasetSource(str(tmp_path), "folder").dataset(config, "eval",
                                                                         batch_size=4)))
  assert first["label"].numpy().tolist() == [b"A", b"B", b"A", b"B"]


def test_clip_offsets_past_512_s_are_exact_in_samples():
  """float32 seconds name the wrong sample past ~512 s at 22050 Hz; `offset_samples` does not."""
  start = 11_380_005                                   # 516.1 s
  example = data.make_example(np.zeros(4), SAMPLE_RATE_HZ, offset_seconds=start / SAMPLE_RATE_HZ,
                              offset_samples=start)
  parsed = data.parse_example(example.SerializeToString())
  assert int(parsed["offset_samples"]) == start
  assert int(round(float(parsed["offset_seconds"]) * SAMPLE_RATE_HZ)) != start


def test_a_long_file_whose_last_windows_fail_keeps_the_clips_that_read(tmp_path, tiny_config,
                                                                      monkeypatch):
  """A header that overstates the length (a truncated VBR MP3) fails the last windows: the
  file keeps its other clips rather than being skipped whole; a count above what the song
  holds is capped as fixed_crops caps it."""
  monkeypatch.setattr(data, "MAX_DECODE_SECONDS", 5.0)
  soundfile.write(str(tmp_path / "long.wav"), synth_song(20.0), SAMPLE_RATE_HZ)
  read_audio = audio_io.read_audio

  def cut_off_at_15_s(path, rate, offset_seconds=0.0, duration_seconds=None):
    if offset_seconds > 15.0:
      raise audio_io.AudioReadError(path, "no audio samples decoded")
    return read_audio(path, rate, offset_seconds, duration_seconds)
  monkeypatch.setattr(audio_io, "read_audio", cut_off_at_15_s)
  files = data.list_folder(tmp_path)
  skipped = data.SkippedFiles()
  for count, expected in ((4, 3), (40, 16)):   # starts 0, 6.3, 12.7 (19 fails); 20 of 1 s, 4 fail
    config = dataclasses.replace(tiny_config, clips_per_file=count)
    clips = np.concatenate([b["audio"] for b in data.folder_dataset(
        files, config, "eval", skipped, batch_size=64)])
    assert len(clips) == expected and len(skipped) == 0
