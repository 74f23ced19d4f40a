"""The reader on real files of every format, rate and channel count; writing; bad files.

Tolerances (stated here, asserted below), against the same analytic signal computed
directly at 22050 Hz, 0.1 s trimmed at each end:
  * lossless files (WAV 16/24-bit, FLAC, AU): max |error| < 2e-3 and exact length
    ceil(n * 22050 / rate);
  * lossy files (Ogg Vorbis, MP3, Opus, M4A/AAC): after aligning by cross-correlation
    (codec delay, at most 0.12 s), SNR >= 15 dB and length within 0.1 s.
"""

import math
import subprocess

import numpy as np
import pytest
import soundfile

from wave_music_vae import audio_io

RATE = 22050
SECONDS = 2.0


def analytic(rate_hz: int, seconds: float = SECONDS, channels: int = 1) -> np.ndarray:
  t = np.arange(int(round(seconds * rate_hz))) / rate_hz
  envelope = 0.6 + 0.4 * np.sin(2 * np.pi * 1.5 * t)
  y = 0.25 * envelope * (np.sin(2 * np.pi * 220 * t) + 0.5 * np.sin(2 * np.pi * 660 * t)
                         + 0.3 * np.sin(2 * np.pi * 1500 * t))
  if channels == 1:
    return y.astype(np.float32)
  # Channels whose mean is y: y*(1+d), y*(1-d), ...
  offsets = np.linspace(-0.2, 0.2, channels)
  return np.stack([y * (1 + d) for d in offsets], axis=1).astype(np.float32)


def write_with_ffmpeg(path, y, rate_hz, codec_args):
  wav = path.with_suffix(".src.wav")
  soundfile.write(str(wav), y, rate_hz, subtype="FLOAT")
  subprocess.run([audio_io.ffmpeg_binary(), "-v", "error", "-y", "-i", str(wav), *codec_args,
                  str(path)], check=True)
  wav.unlink()


LOSSLESS = [("wav16.wav", "PCM_16", 22050, 1), ("wav24.wav", "PCM_24", 44100, 2),
            ("flac.flac", "PCM_16", 48000, 1), ("genre.00001.au", "PCM_16", 22050, 1),
            ("stereo48k.wav", "PCM_16", 48000, 2), ("six_channels.wav", "PCM_16", 44100, 6)]
LOSSY = [("vorbis.ogg", None, 44100, 2), ("mp3.mp3", ["-c:a", "libmp3lame", "-b:a", "192k"], 44100, 2),
         ("opus.opus", ["-c:a", "libopus", "-b:a", "128k"], 48000, 2),
         ("aac.m4a", ["-c:a", "aac", "-b:a", "192k"], 44100, 1)]


@pytest.mark.parametrize("name,subtype,rate,channels", LOSSLESS, ids=[c[0] for c in LOSSLESS])
def test_lossless_formats_give_the_same_signal(tmp_path, name, subtype, rate, channels):
  path = tmp_path / name
  soundfile.write(str(path), analytic(rate, channels=channels), rate, subtype=subtype)
  y = audio_io.read_audio(path, RATE)
  assert y.dtype == np.float32 and y.ndim == 1
  assert len(y) == math.ceil(int(round(SECONDS * rate)) * RATE / rate)
  edge = RATE // 10
  reference = analytic(RATE)
  assert np.max(np.abs(y[edge:-edge] - reference[edge:-edge])) < 2e-3


def _aligned_snr_db(y, reference, max_lag):
  n = min(len(y), len(reference)) - 2 * max_lag
  core = reference[max_lag:max_lag + n]
  lags = range(-max_lag, max_lag + 1)
  best = max(lags, key=lambda lag: float(np.dot(y[max_lag + lag:max_lag + lag + n], core)))
  aligned = y[max_lag + best:max_lag + best + n]
  return 10 * np.log10(np.sum(core ** 2) / np.sum((aligned - core) ** 2))


@pytest.mark.parametrize("name,codec,rate,channels", LOSSY, ids=[c[0] for c in LOSSY])
def test_lossy_formats_give_the_same_signal(tmp_path, name, codec, rate, channels):
  path = tmp_path / name
  if codec is None:
    soundfile.write(str(path), analytic(rate, channels=channels), rate, format="OGG",
                    subtype="VORBIS")
  else:
    write_with_ffmpeg(path, analytic(rate, channels=channels), rate, codec)
  y = audio_io.read_audio(path, RATE)
  assert abs(len(y) - SECONDS * RATE) < 0.1 * RATE
  assert _aligned_snr_db(y, analytic(RATE), max_lag=int(0.12 * RATE)) >= 15.0


@pytest.mark.parametrize("suffix", [".wav", ".flac"])  # tensorflow-io, libsndfile first
def test_channels_are_mixed_down_by_their_mean(tmp_path, suffix):
  rng = np.random.default_rng(0)
  channels = (0.3 * rng.uniform(-1, 1, (RATE, 3))).astype(np.float32)
  path = tmp_path / f"three channels{suffix}"
  soundfile.write(str(path), channels, RATE, subtype="PCM_24")
  np.testing.assert_allclose(audio_io.read_audio(path, RATE), channels.mean(axis=1), atol=1e-5)


def test_tensorflow_io_int_dtypes_are_scaled(tmp_path):
  path = tmp_path / "loud.wav"
  soundfile.write(str(path), np.full(1000, 0.5, np.float32), RATE, subtype="PCM_16")
  np.testing.assert_allclose(audio_io.read_audio(path, RATE)[10:-10], 0.5, atol=1e-4)


def test_window_reading(tmp_path):
  path = tmp_path / "long.flac"
  soundfile.write(str(path), analytic(RATE, seconds=6.0), RATE)
  window = audio_io.read_audio(path, RATE, offset_seconds=2.0, duration_seconds=1.5)
  np.testing.assert_allclose(window, analytic(RATE, seconds=6.0)[2 * RATE:int(3.5 * RATE)],
                             atol=1e-3)


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".mp3"])
def test_a_window_shorter_than_a_decoder_packet_is_that_short(tmp_path, suffix):
  """Decoders return whole packets (MP3 frames, FLAC blocks); the window is cut to its length."""
  path = tmp_path / f"tone{suffix}"
  audio_io.write_audio(path, analytic(RATE, seconds=2.0), RATE)
  for seconds, samples in ((1e-5, 1), (0.01, round(0.01 * RATE))):
    assert len(audio_io.read_audio(path, RATE, duration_seconds=seconds)) == samples


@pytest.mark.parametrize("content,cause", [
    (b"", "empty file"), (b"hello, this is text", "not readable as audio"),
    (b"\x89PNG\r\n\x1a\n" + bytes(200), "not readable as audio"),
    (b"RIFF\x24\x00\x00\x00WAVEfmt ", "not readable as audio")])
def test_bad_files_raise_one_line_error_naming_the_file(tmp_path, content, cause):
  path = tmp_path / "bad file é.wav"
  path.write_bytes(content)
  with pytest.raises(audio_io.AudioReadError) as error:
    audio_io.read_audio(path, RATE)
  message = str(error.value)
  assert message.startswith(str(path)) and cause in message and "\n" not in message
  assert "b'" not in message   # the path once, as text, not again as Python bytes


def test_missing_file(tmp_path):
  with pytest.raises(audio_io.AudioReadError, match="no such file"):
    audio_io.read_audio(tmp_path / "nope.wav", RATE)


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".mp3"])
def test_write_round_trip_and_no_overwrite(tmp_path, suffix):
  y = analytic(RATE)
  path = audio_io.write_audio(tmp_path / f"out{suffix}", y, RATE)
  back = audio_io.read_audio(path, RATE)
  assert abs(len(back) - len(y)) < (0.1 * RATE if suffix == ".mp3" else 1)
  with pytest.raises(audio_io.AudioWriteError, match="already exists"):
    audio_io.write_audio(path, y, RATE)
  assert list(tmp_path.iterdir()) == [path]  # no partial file left behind


@pytest.mark.parametrize("suffix", [".wav", ".flac"])
def test_16_bit_writes_round_to_the_nearest_step(tmp_path, suffix):
  """libsndfile rounds WAV samples down (silence came out as -1s, half a step of DC)."""
  step = 1 / audio_io.PCM_16_FULL_SCALE
  values = np.array([0.0, 1e-6, -1e-6, 0.3 * step, -0.3 * step, 0.7 * step, -0.7 * step, 0.5,
                     -0.5, 1.0, -1.0], np.float32)
  given = values.copy()
  path = audio_io.write_audio(tmp_path / f"out{suffix}", values, RATE)
  np.testing.assert_array_equal(values, given)   # The caller's samples are not scaled in place.
  written, _ = soundfile.read(str(path), dtype="int16")
  np.testing.assert_array_equal(written, [0, 0, 0, 0, 0, 1, -1, 16384, -16384, 32767, -32767])


def test_mp3_keeps_the_band_up_to_the_nyquist_frequency(tmp_path):
  """ffmpeg's default MP3 at 22050 Hz mono is 32 kb/s, which cut everything above ~9 kHz."""
  rng = np.random.default_rng(0)
  noise = (0.3 * rng.standard_normal(3 * RATE)).astype(np.float32)
  path = audio_io.write_audio(tmp_path / "noise.mp3", noise, RATE)
  back = audio_io.read_audio(path, RATE)

  def band_power(x, low_hz, high_hz):
    spectrum = np.abs(np.fft.rfft(x[:2 * RATE])) ** 2
    hz = np.fft.rfftfreq(2 * RATE, 1 / RATE)
    return spectrum[(hz >= low_hz) & (hz < high_hz)].mean()
  offset = np.argmax(np.correlate(back[:4096], noise[:1024], "valid"))   # The encoder's delay.
  back = back[offset:]
  loss_db = 10 * np.log10(band_power(noise, 9000, 10500) / band_power(back, 9000, 10500))
  assert loss_db < 3, f"9-10.5 kHz lost {loss_db:.1f} dB"


def test_failed_write_leaves_nothing(tmp_path):
  with pytest.raises(audio_io.AudioWriteError):
    audio_io.write_audio(tmp_path / "missing_dir" / "x.wav", analytic(RATE), RATE)
  assert not (tmp_path / "missing_dir").exists()


@pytest.mark.parametrize("name", ["a.wav", "a.m4a"])
def test_duration_from_header_or_ffmpeg(tmp_path, name):
  path = tmp_path / name
  if name.endswith(".wav"):
    soundfile.write(str(path), analytic(RATE, seconds=3.0), RATE)
  else:
    write_with_ffmpeg(path, analytic(RATE, seconds=3.0), RATE, ["-c:a", "aac"])
  assert audio_io.duration_seconds(path) == pytest.approx(3.0, abs=0.05)
  (tmp_path / "junk.wav").write_text("junk")
  with pytest.raises(audio_io.AudioReadError, match="junk.wav: cannot tell its duration"):
    audio_io.duration_seconds(tmp_path / "junk.wav")


# Property-based: whatever bytes or audio shapes arrive, the reader either returns finite
# float32 mono at the model rate or raises AudioReadError, and the features made from
# what it returns hold no NaN.
from hypothesis import HealthCheck, given, settings, strategies as st  # pylint: disable=g-import-not-at-top,g-bad-import-order

from wave_music_vae import spectral  # pylint: disable=g-import-not-at-top,g-bad-import-order

_MEL = spectral.MelSpectrogram(RATE, 1024, 256, 80, 0.0, 11025.0, -100.0, -40.0, 40.0)
_FUZZ = settings(max_examples=25, deadline=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture])


def _check_features(y):
  assert y.dtype == np.float32 and y.ndim == 1 and np.all(np.isfinite(y))
  clip = np.pad(y[:RATE], (0, max(0, 2048 - len(y[:RATE]))))
  assert np.all(np.isfinite(_MEL(clip[np.newaxis]).numpy()))


@_FUZZ
@given(num_samples=st.integers(1, 3000), rate=st.sampled_from([8000, 11025, 16000, 44100, 96000]),
       channels=st.integers(1, 6), subtype=st.sampled_from(["PCM_16", "PCM_24", "FLOAT", "PCM_U8"]),
       suffix=st.sampled_from([".wav", ".flac", ".au"]), seed=st.integers(0, 2 ** 16))
def test_fuzz_valid_audio_of_any_shape(tmp_path, num_samples, rate, channels, subtype, suffix,
                                       seed):
  if suffix != ".wav" and subtype in ("FLOAT", "PCM_U8"):
    subtype = "PCM_16"
  if suffix == ".au" and subtype == "PCM_U8":
    subtype = "PCM_16"
  y = np.random.default_rng(seed).uniform(-1, 1, size=(num_samples, channels)).astype(np.float32)
  path = tmp_path / f"fuzz{suffix}"
  soundfile.write(str(path), y, rate, subtype=subtype)
  out = audio_io.read_audio(path, RATE)  # Valid audio of any shape is read, never refused.
  assert len(out) == math.ceil(num_samples * RATE / rate)
  _check_features(out)


@_FUZZ
@given(content=st.binary(min_size=0, max_size=2000),
       header=st.sampled_from([b"", b"RIFF\x00\x10\x00\x00WAVEfmt ", b"fLaC", b"OggS", b"ID3\x03",
                               b".snd"]),
       suffix=st.sampled_from([".wav", ".flac", ".ogg", ".mp3", ".au", ".m4a"]))
def test_fuzz_garbage_bytes(tmp_path, content, header, suffix):
  path = tmp_path / f"garbage{suffix}"
  path.write_bytes(header + content)
  try:
    out = audio_io.read_audio(path, RATE)
  except audio_io.AudioReadError as e:
    assert str(e).startswith(str(path)) and "\n" not in str(e)
    return
  _check_features(out)


def test_an_existing_file_no_decoder_can_parse_is_not_said_to_be_missing(tmp_path):
  """libsndfile's MP3 reader reports a file it cannot parse as one that does not exist."""
  path = tmp_path / "._song.mp3"   # e.g. a macOS AppleDouble twin of a song
  path.write_bytes(b"\x00\x05\x16\x07" + bytes(4000))
  with pytest.raises(audio_io.AudioReadError) as error:
    audio_io.read_audio(path, RATE)
  assert "does not exist" not in str(error.value)
  assert f"libsndfile: {audio_io.LIBSNDFILE_CANNOT_PARSE};" in str(error.value)
