"""Bad input, odd files and refused outputs, met as a user meets them (issue 8).

Real files are written and decoded, and the commands run as real subprocesses.
What is checked for each case: the right audio comes back, or the command stops
with one line `<program>: error: <file>: <cause>` and exit code 1, no traceback,
and the folders it touched hold exactly what they held before (no partial file,
no input overwritten). The report of every case is docs/robustness.md.

Cases already covered elsewhere (not repeated here): every format and bad-file
errors of the reader and its hypothesis fuzz (test_audio_io.py), bad files skipped
and counted in training and an all-bad folder (test_data.py, test_cli_train.py),
non-finite steps (test_training.py), signals (test_cli_train.py), export
signatures (test_export.py).
"""

import importlib.util
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile
import tensorflow as tf
import tensorflow_io as tfio

from conftest import SAMPLE_RATE_HZ, synth_song
from test_audio_io import _aligned_snr_db, analytic, write_with_ffmpeg
from wave_music_vae import audio_io
from wave_music_vae import data
from wave_music_vae import spectral

RATE = SAMPLE_RATE_HZ
SECONDS = 2.0
BIN = Path(sys.executable).parent  # The venv's console scripts.
MAX_CODEC_DELAY = int(0.12 * RATE)
_MEL = spectral.MelSpectrogram(RATE, 1024, 256, 80, 0.0, 11025.0, -100.0, -40.0, 40.0)


def _assert_lossless(y, rate_hz=RATE, seconds=SECONDS):
  """y is analytic() at RATE, exact length, within 2e-3 away from the edges."""
  assert y.dtype == np.float32 and y.ndim == 1
  assert len(y) == math.ceil(int(round(seconds * rate_hz)) * RATE / rate_hz)
  edge = RATE // 10
  assert np.max(np.abs(y[edge:-edge] - analytic(RATE, seconds)[edge:-edge])) < 2e-3


def _assert_lossy(y, seconds=SECONDS):
  """y is analytic() through a lossy codec: length within 0.1 s, aligned SNR >= 15 dB."""
  assert abs(len(y) - seconds * RATE) < 0.1 * RATE
  assert _aligned_snr_db(y, analytic(RATE, seconds), MAX_CODEC_DELAY) >= 15.0


def _tensorflow_io_refuses(path):
  with pytest.raises(tf.errors.InvalidArgumentError):
    tfio.audio.AudioIOTensor(str(path)).to_tensor()


# Reader ------------------------------------------------------------------------------------


def _mp3(path, y, rate):
  write_with_ffmpeg(path, y, rate, ["-c:a", "libmp3lame", "-b:a", "192k", "-f", "mp3"])


def _flac(path, y, rate):
  soundfile.write(str(path), y, rate, format="FLAC", subtype="PCM_16")


def _aac_adts(path, y, rate):
  write_with_ffmpeg(path, y, rate, ["-c:a", "aac", "-b:a", "192k", "-f", "adts"])


def _m4a(path, y, rate):
  write_with_ffmpeg(path, y, rate, ["-c:a", "aac", "-b:a", "192k", "-f", "ipod"])


def _wav(path, y, rate):
  soundfile.write(str(path), y, rate, format="WAV", subtype="PCM_16")


@pytest.mark.parametrize("name,write,lossless", [
    ("mp3 named.wav", _mp3, False), ("flac named.ogg", _flac, True),
    ("wav named.mp3", _wav, True), ("m4a named.wav", _m4a, False),
    ("adts aac named.mp3", _aac_adts, False)])
def test_a_file_with_the_wrong_extension_gives_its_audio(tmp_path, name, write, lossless):
  path = tmp_path / name
  write(path, analytic(44100, channels=2), 44100)
  y = audio_io.read_audio(path, RATE)
  if lossless:
    _assert_lossless(y, 44100)
  else:
    _assert_lossy(y)


def test_aac_named_mp3_is_refused_by_two_decoders_and_read_by_the_third(tmp_path):
  path = tmp_path / "adts aac named.mp3"
  _aac_adts(path, analytic(44100, channels=2), 44100)
  _tensorflow_io_refuses(path)
  with pytest.raises(soundfile.LibsndfileError):
    soundfile.read(str(path))
  _assert_lossy(audio_io.read_audio(path, RATE))


def _soundfile_writer(format_name, subtype):
  def write(path, y, rate):
    soundfile.write(str(path), y, rate, format=format_name, subtype=subtype)
  return write


def _rf64(path, y, rate):
  write_with_ffmpeg(path, y, rate, ["-c:a", "pcm_s16le", "-rf64", "always", "-f", "wav"])


def _ogg_opus(path, y, rate):
  write_with_ffmpeg(path, y, rate, ["-c:a", "libopus", "-b:a", "128k", "-f", "ogg"])


# Headers tensorflow-io 0.37 rejects (first decoder) and libsndfile reads (second).
@pytest.mark.parametrize("name,write,rate,lossless", [
    ("rf64.wav", _rf64, 44100, True),
    ("float64.wav", _soundfile_writer("WAV", "DOUBLE"), 44100, True),
    ("mu-law.wav", _soundfile_writer("WAV", "ULAW"), 44100, False),
    ("ima adpcm.wav", _soundfile_writer("WAV", "IMA_ADPCM"), 44100, False),
    ("opus.ogg", _ogg_opus, 48000, False)])
def test_a_header_tensorflow_io_rejects_is_read_by_libsndfile(tmp_path, name, write, rate,
                                                              lossless):
  path = tmp_path / name
  write(path, analytic(rate, channels=2), rate)
  _tensorflow_io_refuses(path)
  y = audio_io.read_audio(path, RATE)
  if lossless:
    _assert_lossless(y, rate)
  else:
    _assert_lossy(y)


@pytest.mark.parametrize("channels", [1, 2])
def test_32_bit_integer_wav_that_tensorflow_io_misreads_is_read_right(tmp_path, channels):
  path = tmp_path / "pcm32.wav"
  soundfile.write(str(path), analytic(44100, channels=channels), 44100, subtype="PCM_32")
  misread = tfio.audio.AudioIOTensor(str(path)).to_tensor().numpy()
  with np.errstate(invalid="ignore", over="ignore"):
    assert not np.allclose(misread, soundfile.read(str(path), dtype="float32")[0].reshape(
        misread.shape), atol=0.1)  # tensorflow-io returns the integers' bits as float32
  _assert_lossless(audio_io.read_audio(path, RATE), 44100)


def test_mp3_with_a_one_megabyte_id3v2_tag(tmp_path):
  """Cover art in front of the audio: an ID3v2.3 APIC frame of 1 MB."""
  plain = tmp_path / "plain.mp3"
  _mp3(plain, analytic(44100, channels=2), 44100)
  picture = b"image/png\x00\x03\x00" + b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4096
  frame = b"APIC" + len(picture).to_bytes(4, "big") + b"\x00\x00" + picture
  size = len(frame)
  syncsafe = bytes([(size >> 21) & 127, (size >> 14) & 127, (size >> 7) & 127, size & 127])
  tagged = tmp_path / "tagged.mp3"
  tagged.write_bytes(b"ID3\x03\x00\x00" + syncsafe + frame + plain.read_bytes())
  assert tagged.stat().st_size > 2 ** 20
  y = audio_io.read_audio(tagged, RATE)
  _assert_lossy(y)
  np.testing.assert_allclose(y, audio_io.read_audio(plain, RATE), atol=1e-6)


def test_flac_written_to_a_pipe_has_no_length_yet_is_read_and_trained_on(tmp_path):
  """A streaming encoder cannot go back to write the sample count into the header."""
  source = tmp_path / "source.wav"
  soundfile.write(str(source), analytic(44100, channels=2), 44100, subtype="FLOAT")
  path = tmp_path / "streamed.flac"
  with open(path, "wb") as stdout:
    subprocess.run([audio_io.ffmpeg_binary(), "-v", "error", "-i", str(source), "-c:a", "flac",
                    "-f", "flac", "pipe:1"], stdout=stdout, check=True)
  assert soundfile.info(str(path)).frames == 2 ** 63 - 1  # libsndfile's "unknown length"
  _assert_lossless(audio_io.read_audio(path, RATE), 44100)
  with pytest.raises(audio_io.AudioReadError, match="cannot tell its duration"):
    audio_io.duration_seconds(path)
  files = [data.AudioFile(str(path), path.name)]
  for training in (True, False):
    skipped = data.SkippedFiles()
    (song, _), = list(data.decoded_songs(files, RATE, skipped, training))
    assert len(skipped) == 0
    _assert_lossless(song.numpy(), 44100)


def test_a_picture_named_wav_says_there_is_no_audio(tmp_path):
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  path = tmp_path / "cover art.wav"
  plt.imsave(path, np.random.default_rng(0).uniform(size=(32, 32)), format="png")
  with pytest.raises(audio_io.AudioReadError) as error:
    audio_io.read_audio(path, RATE)
  message = str(error.value)
  assert message.startswith(f"{path}: not readable as audio (") and "\n" not in message
  assert "ffmpeg: no audio stream in the file" in message


@pytest.mark.parametrize("bad_value", [np.nan, np.inf])
def test_a_float_wav_holding_nan_or_inf_is_refused(tmp_path, bad_value):
  path = tmp_path / "overflowed mix.wav"
  y = analytic(44100)
  y[1000] = bad_value
  soundfile.write(str(path), y, 44100, subtype="FLOAT")
  with pytest.raises(audio_io.AudioReadError) as error:
    audio_io.read_audio(path, RATE)
  assert str(error.value) == f"{path}: contains NaN or infinite samples"


@pytest.mark.parametrize("peak", [32767.0, 1e30])
def test_a_float_wav_not_scaled_to_full_scale_is_refused(tmp_path, peak):
  path = tmp_path / "int16 values as float.wav"
  y = analytic(44100)
  soundfile.write(str(path), y / np.max(np.abs(y)) * peak, 44100, subtype="FLOAT")
  with pytest.raises(audio_io.AudioReadError) as error:
    audio_io.read_audio(path, RATE)
  assert str(error.value) == (f"{path}: samples reach {peak:.3g}, far outside full scale [-1, 1] "
                              "(float audio must be scaled to [-1, 1])")


def test_a_float_wav_a_little_over_full_scale_is_kept(tmp_path):
  path = tmp_path / "hot master.wav"
  hot = analytic(44100) / np.max(np.abs(analytic(44100))) * 1.5
  soundfile.write(str(path), hot, 44100, subtype="FLOAT")
  np.testing.assert_allclose(audio_io.read_audio(path, 44100), hot, atol=1e-6)


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".mp3"])
def test_silence_comes_back_as_zeros_and_finite_features(tmp_path, suffix):
  path = tmp_path / f"silence{suffix}"
  audio_io.write_audio(path, np.zeros(2 * 44100, np.float32), 44100)
  y = audio_io.read_audio(path, RATE)
  assert abs(len(y) - 2 * RATE) < (0.1 * RATE if suffix == ".mp3" else 1)
  assert np.max(np.abs(y)) < 1e-4
  features = _MEL(y[np.newaxis, :RATE]).numpy()
  assert np.all(np.isfinite(features))
  assert np.allclose(features, features.min())  # silence is the floor everywhere


@pytest.mark.parametrize("num_samples", [1, 100, 4410])
def test_a_file_shorter_than_one_clip_keeps_its_samples(tmp_path, num_samples):
  path = tmp_path / "blip.wav"
  soundfile.write(str(path), analytic(44100)[:num_samples], 44100, subtype="FLOAT")
  y = audio_io.read_audio(path, RATE)
  assert len(y) == math.ceil(num_samples * RATE / 44100)
  if num_samples == 4410:  # long enough for the resampler's edges to settle
    np.testing.assert_allclose(y[200:-200], analytic(RATE)[200:len(y) - 200], atol=2e-3)
  clip = data.fixed_crops(tf.constant(y), RATE, 4).numpy()
  assert clip.shape == (1, RATE)
  np.testing.assert_array_equal(clip[0, :len(y)], y)
  assert not clip[0, len(y):].any()


@pytest.mark.parametrize("rate,channels,format_name,subtype", [
    (8000, 1, "WAV", "PCM_16"), (96000, 6, "FLAC", "PCM_24"), (96000, 6, "WAV", "PCM_24")])
def test_8_khz_mono_and_96_khz_5_1(tmp_path, rate, channels, format_name, subtype):
  path = tmp_path / f"{rate} Hz {channels} ch.{format_name.lower()}"
  soundfile.write(str(path), analytic(rate, channels=channels), rate, format=format_name,
                  subtype=subtype)
  assert soundfile.info(str(path)).channels == channels
  _assert_lossless(audio_io.read_audio(path, RATE), rate)


UNICODE_FOLDER = "dossier à été 曲 #1"


@pytest.mark.parametrize("name,write,lossless", [
    ("chanson d'été 曲.wav", _wav, True),           # tensorflow-io
    ("ça va — opus.ogg", _ogg_opus, False),          # libsndfile
    ("Ünïcödé sóng ✓.m4a", _m4a, False)])            # ffmpeg
def test_unicode_and_spaces_in_paths_through_each_decoder(tmp_path, name, write, lossless):
  folder = tmp_path / UNICODE_FOLDER
  folder.mkdir()
  path = folder / name
  write(path, analytic(48000, channels=2), 48000)
  y = audio_io.read_audio(path, RATE)
  if lossless:
    _assert_lossless(y, 48000)
  else:
    _assert_lossy(y)
  assert audio_io.duration_seconds(path) == pytest.approx(SECONDS, abs=0.05)
  window = audio_io.read_audio(path, RATE, offset_seconds=0.5, duration_seconds=1.0)
  assert abs(len(window) - RATE) < 0.05 * RATE


# Generate ----------------------------------------------------------------------------------


def _run(program, *args, timeout=300):
  """Runs a command as a user would, with TensorFlow's logging left at the command's default."""
  env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
  return subprocess.run([str(BIN / program), *map(str, args)], capture_output=True, text=True,
                        timeout=timeout, check=False, env=env)


def _one_line_error(done, program, *fragments):
  """The command failed with exit code 1 and exactly one error line holding `fragments`."""
  assert done.returncode == 1, (done.stdout, done.stderr)
  assert "Traceback" not in done.stderr and "Traceback" not in done.stdout
  errors = [line for line in done.stderr.splitlines() if line.startswith(f"{program}: error: ")]
  assert done.stderr.strip().splitlines() == errors, done.stderr  # nothing else on stderr
  for fragment in fragments:
    assert fragment in errors[0], errors[0]
  return errors[0]


def _listing(folder):
  """{relative path: bytes} of every file below `folder` ({} when it does not exist)."""
  folder = Path(folder)
  if not folder.exists():
    return {}
  return {p.relative_to(folder).as_posix(): (p.read_bytes() if not p.is_symlink() else
                                             os.readlink(p))
          for p in sorted(folder.rglob("*")) if p.is_file() or p.is_symlink()}


GENERATE = "wave_music_vae_generate"


@pytest.fixture(scope="module")
def input_folder(tmp_path_factory):
  """A folder holding one input song, 'my song é.wav' (1.2 s)."""
  folder = tmp_path_factory.mktemp("inputs") / "my songs"
  folder.mkdir()
  soundfile.write(str(folder / "my song é.wav"), synth_song(1.2, seed=5), RATE)
  return folder


def test_generate_unreadable_input(trained_run_dir, tmp_path):
  bad = tmp_path / "half a download.wav"
  good = tmp_path / "good.wav"
  soundfile.write(str(good), synth_song(1.0), RATE)
  bad.write_bytes(good.read_bytes()[:44])  # the header, no samples
  out = tmp_path / "out"
  done = _run(GENERATE, f"--run_dir={trained_run_dir}", "--mode=reconstruct",
              f"--input_audio_1={bad}", f"--output_dir={out}")
  _one_line_error(done, GENERATE, f"{bad}: not readable as audio")
  assert not out.exists()


def test_generate_with_a_checkpoint_of_another_config(trained_run_dir, input_folder, tmp_path):
  out = tmp_path / "out"
  before = _listing(trained_run_dir)
  done = _run(GENERATE, f"--run_dir={trained_run_dir}", "--config=gtzan", "--mode=reconstruct",
              f"--input_audio_1={input_folder / 'my song é.wav'}", f"--output_dir={out}")
  _one_line_error(done, GENERATE, "was trained with config 'tiny'", "'gtzan'", "--config=tiny")
  assert not out.exists()
  assert _listing(trained_run_dir) == before


def test_generate_into_a_folder_that_cannot_be_made(trained_run_dir, input_folder, tmp_path):
  blocker = tmp_path / "notes.txt"
  blocker.write_text("a file where a folder should be")
  out = blocker / "out"
  done = _run(GENERATE, f"--run_dir={trained_run_dir}", "--mode=reconstruct",
              f"--input_audio_1={input_folder / 'my song é.wav'}", f"--output_dir={out}")
  _one_line_error(done, GENERATE, f"{out}: cannot be made: {blocker} is not a folder")
  assert _listing(tmp_path) == {"notes.txt": b"a file where a folder should be"}


def _names_this_run_may_take(mode, suffix, seconds_ahead=240):
  """Output names for every second from now on: the run's own timestamp is among them."""
  now = int(time.time())
  return [f"{mode}_{time.strftime('%Y-%m-%d_%H%M%S', time.localtime(t))}-000-of-001.{suffix}"
          for t in range(now - 1, now + seconds_ahead)]


def test_generate_never_overwrites_its_input_even_with_overwrite(trained_run_dir, input_folder,
                                                                 tmp_path):
  """Output folder = the input's folder, and the output's name already is the input's."""
  folder = tmp_path / "songs"
  shutil.copytree(input_folder, folder)
  song = folder / "my song é.wav"
  for name in _names_this_run_may_take("reconstruct", "wav"):
    (folder / name).symlink_to(song.name)
  before = _listing(folder)
  done = _run(GENERATE, f"--run_dir={trained_run_dir}", "--mode=reconstruct",
              f"--input_audio_1={song}", f"--output_dir={folder}", "--overwrite")
  _one_line_error(done, GENERATE, "is one of the inputs (never overwritten)")
  assert _listing(folder) == before


def test_generate_keeps_existing_outputs_unless_overwrite(trained_run_dir, input_folder,
                                                          tmp_path):
  folder = tmp_path / "songs"
  shutil.copytree(input_folder, folder)
  song = folder / "my song é.wav"
  old = synth_song(0.5, seed=9)
  for name in _names_this_run_may_take("reconstruct", "wav"):
    soundfile.write(str(folder / name), old, RATE)
  before = _listing(folder)
  refused = _run(GENERATE, f"--run_dir={trained_run_dir}", "--mode=reconstruct",
                 f"--input_audio_1={song}", f"--output_dir={folder}")
  _one_line_error(refused, GENERATE, "already exists (not overwritten)")
  assert _listing(folder) == before

  done = _run(GENERATE, f"--run_dir={trained_run_dir}", "--mode=reconstruct",
              f"--input_audio_1={song}", f"--output_dir={folder}", "--overwrite")
  assert done.returncode == 0, done.stderr
  after = _listing(folder)
  assert sorted(after) == sorted(before)  # no temporary or extra file left
  replaced = [name for name in before if after[name] != before[name]]
  assert len(replaced) == 1 and replaced[0] in done.stdout
  assert after[song.name] == before[song.name]
  assert len(audio_io.read_audio(folder / replaced[0], RATE)) == len(
      audio_io.read_audio(song, RATE))


# Training over odd audio ---------------------------------------------------------------------


def _silent_flac(path, seconds, rate_hz):
  """A silent 16-bit FLAC written block by block (never the whole song in memory)."""
  block = np.zeros(60 * rate_hz, np.float32)
  with soundfile.SoundFile(str(path), "w", rate_hz, 1, format="FLAC", subtype="PCM_16") as f:
    for _ in range(int(seconds // 60)):
      f.write(block)


@pytest.mark.slow
def test_training_on_8_khz_mono_96_khz_5_1_and_a_20_minute_silent_flac(tmp_path):
  songs = tmp_path / "odd songs"
  songs.mkdir()
  soundfile.write(str(songs / "phone call 8k.wav"), synth_song(3.0, 8000, seed=1), 8000)
  soundfile.write(str(songs / "surround 96k 5.1.flac"),
                  synth_song(3.0, 96000, seed=2, channels=6), 96000, subtype="PCM_24")
  long_silence = songs / "twenty minutes of silence.flac"
  _silent_flac(long_silence, 20 * 60, RATE)
  assert audio_io.duration_seconds(long_silence) == 20 * 60

  # The long file is read as one window of MAX_DECODE_SECONDS, not whole.
  files = [f for f in data.list_folder(songs) if f.path == str(long_silence)]
  (window, _), = list(data.decoded_songs(files, RATE, data.SkippedFiles(), training=True))
  assert window.shape[0] == data.MAX_DECODE_SECONDS * RATE

  run_dir = tmp_path / "run"
  done = subprocess.run(
      [sys.executable, "-m", "wave_music_vae.cli.train", "--config=tiny", f"--run_dir={run_dir}",
       f"--examples_path={songs}", "--num_steps=6", "--noprogress", "--eval_num_batches=2"],
      capture_output=True, text=True, timeout=400, check=False)
  assert done.returncode == 0, done.stderr
  assert "3 training file(s)" in done.stdout
  assert "trained steps 0 -> 6" in done.stdout
  assert "non-finite steps skipped: 0; 0 unreadable file(s) skipped" in done.stdout
  assert "Traceback" not in done.stderr
  assert tf.train.latest_checkpoint(str(run_dir / "train")).endswith("ckpt-6")


# Every command, a missing input ------------------------------------------------------------


@pytest.fixture
def missing(tmp_path):
  return tmp_path / "missing folder é"


COMMANDS = {
    "wave_music_vae_train": lambda run, missing, out: [
        "--config=tiny", f"--run_dir={out / 'run'}", f"--examples_path={missing}"],
    "wave_music_vae_generate": lambda run, missing, out: [
        f"--run_dir={run}", "--mode=reconstruct", f"--input_audio_1={missing / 'song.wav'}",
        f"--output_dir={out / 'generated'}"],
    "wave_music_vae_attributes": lambda run, missing, out: [
        f"--run_dir={run}", f"--examples_path={missing}"],
    "wave_music_vae_export": lambda run, missing, out: [
        f"--run_dir={missing}", f"--export_dir={out / 'exports'}"],
    "wave_music_vae_evaluate": lambda run, missing, out: [
        f"--run_dir={run}", f"--examples_path={missing}", f"--output_json={out / 'eval.json'}"],
    "wave_music_vae_prepare_tfrecord": lambda run, missing, out: [
        f"--input_audio_filepatterns={missing / '*.wav'}",
        f"--output_tfrecord_path={out / 'records' / 'clips'}"],
}
EXPECTED = {
    "wave_music_vae_train": "{missing}: no such folder of songs, and no TFRecord files match",
    "wave_music_vae_generate": "{missing}/song.wav: no such file",
    "wave_music_vae_attributes": "{missing}: no such folder",
    "wave_music_vae_export": "{missing}: no checkpoint in {missing}/train",
    "wave_music_vae_evaluate": "{missing}: no such folder of songs, and no TFRecord files match",
    "wave_music_vae_prepare_tfrecord": "{missing}/*.wav: no audio files found",
}


def _needs_extra(program):
  """The Beam tool needs the `[beam]` extra; without it test_import checks its message."""
  if program != "wave_music_vae_prepare_tfrecord":
    return program
  beam_missing = importlib.util.find_spec("apache_beam") is None
  return pytest.param(program, marks=pytest.mark.skipif(
      beam_missing, reason="apache_beam (the [beam] extra) is not installed"))


@pytest.mark.parametrize("program", [_needs_extra(program) for program in sorted(COMMANDS)])
def test_every_command_names_a_missing_input_in_one_line(trained_run_dir, missing, tmp_path,
                                                         program):
  out = tmp_path / "out"
  out.mkdir()
  before = _listing(trained_run_dir)
  done = _run(program, *COMMANDS[program](trained_run_dir, missing, out))
  _one_line_error(done, program, EXPECTED[program].format(missing=missing))
  assert not any(out.iterdir())  # nothing made, not even a folder
  assert _listing(trained_run_dir) == before


def test_verbose_shows_the_traceback(tmp_path):
  """A folder of no readable audio, with --verbose: traceback, then the same one line."""
  songs = tmp_path / "songs"
  songs.mkdir()
  (songs / "notes.wav").write_text("not audio")
  done = _run("wave_music_vae_train", "--config=tiny", f"--run_dir={tmp_path / 'run'}",
              f"--examples_path={songs}", "--verbose")
  assert done.returncode == 1
  assert "Traceback (most recent call last)" in done.stderr
  assert done.stderr.strip().splitlines()[-1] == (
      "wave_music_vae_train: error: no readable audio among 1 file(s); "
      "1 unreadable file(s) skipped")
  assert not (tmp_path / "run").exists()  # the data is checked before the run folder is made


# Every command, an output location that cannot be written --------------------------------


WRITERS = {
    "wave_music_vae_train": lambda run, songs, out: [
        "--config=tiny", f"--run_dir={out}", f"--examples_path={songs}"],
    "wave_music_vae_generate": lambda run, songs, out: [
        f"--run_dir={run}", "--mode=sample", f"--output_dir={out}"],
    "wave_music_vae_export": lambda run, songs, out: [f"--run_dir={run}", f"--export_dir={out}"],
    "wave_music_vae_evaluate": lambda run, songs, out: [
        f"--run_dir={run}", f"--examples_path={songs}", f"--output_json={out}"],
    "wave_music_vae_prepare_tfrecord": lambda run, songs, out: [
        f"--input_audio_filepatterns={songs}", f"--output_tfrecord_path={out}"],
}


@pytest.mark.parametrize("program", [_needs_extra(program) for program in sorted(WRITERS)])
def test_every_command_refuses_an_unwritable_output_before_working(trained_run_dir, input_folder,
                                                                   tmp_path, program):
  """An output under a file, or in /sys (where even root makes no files): one line, at once."""
  blocker = tmp_path / "notes.txt"
  blocker.write_text("a file where a folder should be")
  before = _listing(trained_run_dir)
  out = blocker / "out.json"
  done = _run(program, *WRITERS[program](trained_run_dir, input_folder, out))
  _one_line_error(done, program, f"{out}: cannot be made: {blocker} is not a folder")
  if Path("/sys").is_dir():
    out = Path("/sys/wave_music_vae_out.json")
    done = _run(program, *WRITERS[program](trained_run_dir, input_folder, out))
    _one_line_error(done, program, f"{out}: cannot be written in /sys (")
  assert _listing(tmp_path) == {"notes.txt": b"a file where a folder should be"}
  assert _listing(trained_run_dir) == before


# Every command, --help ---------------------------------------------------------------------


HELP = {  # The first line of each tool's docstring, and flags of its own and shared ones.
    "wave_music_vae_train": ("Trains a WaveMusicVAE", ["run_dir", "num_steps", "hparams"]),
    "wave_music_vae_generate": ("Interpolates, samples", ["input_audio_1", "output_dir",
                                                           "temperature", "config"]),
    "wave_music_vae_attributes": ("Computes attribute vectors", ["examples_path", "overwrite"]),
    "wave_music_vae_export": ("Exports a trained model", ["export_dir", "model_name"]),
    "wave_music_vae_evaluate": ("Evaluates a trained model", ["output_json", "max_clips"]),
    "wave_music_vae_prepare_tfrecord": ("Cuts songs into clips", ["output_tfrecord_path",
                                                                  "example_secs"]),
}


@pytest.mark.parametrize("program", sorted(HELP))
def test_every_command_help_shows_its_usage_and_flags(program):
  """The installed console script's --help: usage and flags, not a bare `USAGE: ... [flags]`."""
  done = _run(program, "--help", timeout=120)  # absl exits with code 1 after --help.
  assert not done.stderr.strip(), done.stderr
  first_line, flag_names = HELP[program]
  assert first_line in done.stdout
  assert "Usage:" in done.stdout and f"  {program} --" in done.stdout
  for name in flag_names + ["verbose"]:
    assert re.search(rf"\n  --(\[no\])?{name}:", done.stdout), (name, done.stdout)


def test_a_tilde_in_path_flags_means_home(song_folder, tmp_path):
  """`--run_dir=~/runs` reaches the program unexpanded (the shell expands only word starts)."""
  home = tmp_path / "home"
  shutil.copytree(song_folder, home / "my songs")
  env = dict(os.environ, HOME=str(home))
  done = subprocess.run(
      [str(BIN / "wave_music_vae_train"), "--config=tiny", "--run_dir=~/runs/first",
       "--examples_path=~/my songs", "--num_steps=1", "--noprogress", "--eval_num_batches=1"],
      capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path, env=env)
  assert done.returncode == 0, done.stderr
  assert (home / "runs" / "first" / "config.json").is_file()
  assert not (tmp_path / "~").exists()


def test_sigterm_cleans_up_like_ctrl_c_and_exits_143(tmp_path, capsys):
  """Every command but train (which checkpoints) turns SIGTERM into Ctrl-C's clean-up."""
  from wave_music_vae.cli import common  # pylint: disable=g-import-not-at-top
  if threading.current_thread() is not threading.main_thread():
    pytest.skip("signal handlers can only be set from the main thread")
  partial = tmp_path / ".song.partial.wav"

  def main(argv):
    del argv
    try:
      partial.write_bytes(b"half a song")
      os.kill(os.getpid(), signal.SIGTERM)   # arrives mid-write
      time.sleep(5)
      return 0
    finally:
      partial.unlink(missing_ok=True)

  previous = signal.getsignal(signal.SIGTERM)
  try:
    assert common.run_safely("wave_music_vae_generate", main, ["prog"]) == 143
  finally:
    signal.signal(signal.SIGTERM, previous)
  assert not partial.exists()
  assert capsys.readouterr().err == "wave_music_vae_generate: terminated (SIGTERM)\n"
