"""Reads any audio file to float32 mono at the model's rate; writes audio files.

Decoders, tried in order until one succeeds (a file that one rejects is often
read by another):
  * WAV: tensorflow-io (`tfio.audio.AudioIOTensor`) first, then libsndfile. It
    returns each file's native dtype (int16, int32, uint8, float32): scaled here to
    [-1, 1]. It refuses RF64, mu-law, ADPCM, 64-bit float WAV, and misreads 32-bit
    integer WAV as float, so such files go to libsndfile.
  * FLAC, Ogg Vorbis and MP3: libsndfile (`soundfile`, >= 1.1 for MP3) first, then
    tensorflow-io. The tensorflow-io 0.37.1 wheel is built without SSE/AVX and
    decodes these 4 to 10 times slower than libsndfile (30 s of 44.1 kHz stereo on
    this project's 2-core machine: FLAC 0.23 s vs 0.024 s, Ogg 0.29 s vs 0.040 s,
    MP3 0.082 s vs 0.021 s; WAV 0.0014 s vs 0.0065 s, where it is the faster one).
    libsndfile also needs no lock and releases the interpreter lock, so tf.data's
    parallel map decodes several files at once (benchmarks/input_pipeline.py).
  * AU/SND and AIFF: libsndfile.
  * the ffmpeg binary that `imageio-ffmpeg` ships, for everything else (GTZAN's
    `.au` when libsndfile refuses it, Opus, M4A/AAC, ...). It decodes to a temporary
    32-bit float WAV at the file's own rate and channel count, so mixing and
    resampling stay ours.
Channels are mixed down by their mean. Resampling uses soxr's "HQ" filter (through
`librosa.resample`); a file of n samples at rate r comes back with exactly
ceil(n * sample_rate_hz / r) samples.

Every failure is an `AudioReadError` whose message is one line naming the file and
the cause.
"""

import math
import re
import os
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Optional

import numpy as np

from wave_music_vae import paths

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".au", ".snd", ".aif", ".aiff",
                    ".opus", ".m4a", ".aac", ".mp4", ".wma", ".webm")
_TFIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".mp3")
_SOUNDFILE_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".au", ".snd", ".aif", ".aiff", ".mp3")
_SOUNDFILE_WRITE_FORMATS = {".wav": "PCM_16", ".flac": "PCM_16"}
PCM_16_FULL_SCALE = 32767  # libsndfile's float -> 16-bit scale.
_FFMPEG_ENCODER_OPTIONS = {".mp3": ["-codec:a", "libmp3lame", "-q:a", "2"]}
# tensorflow-io's AudioIOTensor is not thread-safe: decoded in parallel (tf.data's
# parallel map), one file now and then comes back with another file's samples.
_TFIO_LOCK = threading.Lock()
# libsndfile's frame count for a file whose header gives none (a FLAC written to a pipe).
_UNKNOWN_FRAMES = 2 ** 63 - 1
# Largest |sample| accepted (60 dB over full scale). Float audio beyond it is
# not scaled to [-1, 1] (e.g. int16 values stored as float) and would saturate
# the log-mel ceiling or overflow float32 power spectra.
MAX_PEAK = 1000.0
PEAK_LIMIT = 0.99  # Generated audio louder than this is scaled down to it, not clipped.
# A clip whose RMS (dB below full scale) is below this is silence, not music: a track's
# silent ending, digital zeros, 16-bit dither at about -96 dBFS. Quiet music stays: the
# shipped checkpoint's 64 held-out clips reach down to -76.8 dBFS and all are kept.
SILENCE_DBFS = -80.0


def audible(clips: np.ndarray) -> np.ndarray:
  """bool [n]: which of `clips` float32 [n, samples] have an RMS of SILENCE_DBFS or more."""
  rms = np.sqrt(np.mean(np.square(clips, dtype=np.float64), axis=-1))
  return rms >= 10.0 ** (SILENCE_DBFS / 20.0)


class AudioReadError(Exception):
  """A file that no decoder could read; str() is '<path>: <cause>'."""

  def __init__(self, path, cause: str):
    self.path = str(path)
    self.cause = cause
    super().__init__(f"{path}: {cause}")


class AudioWriteError(Exception):
  """An output that could not be written; str() is '<path>: <cause>'."""

  def __init__(self, path, cause: str):
    self.path = str(path)
    self.cause = cause
    super().__init__(f"{path}: {cause}")


def _one_line(error: BaseException) -> str:
  """A decoder's error as one short line, without TensorFlow's op decorations."""
  text = re.sub(r"\{\{[^}]*\}\}|\[Op:[^\]]*\]", "", str(error))
  text = " ".join(text.split()) or type(error).__name__
  return text[:200]


def _scale_to_float(samples: np.ndarray) -> np.ndarray:
  """Native PCM dtypes -> float32 in [-1, 1]."""
  if samples.dtype == np.uint8:
    return (samples.astype(np.float32) - 128.0) / 128.0
  if np.issubdtype(samples.dtype, np.integer):
    return samples.astype(np.float32) / float(-np.iinfo(samples.dtype).min)
  return samples.astype(np.float32)


def _is_32_bit_integer_pcm(path: Path) -> bool:
  """True for a WAV of 32-bit integer samples (libsndfile's header read, no decoding)."""
  import soundfile  # pylint: disable=g-import-not-at-top
  try:
    return soundfile.info(os.fsencode(path)).subtype == "PCM_32"
  except Exception:  # pylint: disable=broad-except  # Not a libsndfile format.
    return False


def _decode_tfio(path: Path, offset_seconds: float, duration_seconds: Optional[float]):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_io as tfio  # pylint: disable=g-import-not-at-top
  with _TFIO_LOCK:
    audio = tfio.audio.AudioIOTensor(os.fsencode(path))
    if audio.dtype == tf.float32 and _is_32_bit_integer_pcm(path):
      # tensorflow-io 0.37 takes any 32-bit WAV for float32 and returns the integers' bits.
      raise ValueError("32-bit integer PCM, which tensorflow-io misreads as float")
    rate = int(audio.rate.numpy())
    start = int(round(offset_seconds * rate))
    stop = None if duration_seconds is None else start + int(round(duration_seconds * rate))
    samples = audio[start:stop] if (start or stop is not None) else audio.to_tensor()
    return _scale_to_float(np.asarray(samples.numpy())), rate


LIBSNDFILE_CANNOT_PARSE = "not audio it can decode (no valid header or frames)"


def _decode_soundfile(path: Path, offset_seconds: float, duration_seconds: Optional[float]):
  import soundfile  # pylint: disable=g-import-not-at-top
  try:
    opened = soundfile.SoundFile(os.fsencode(path))
  except soundfile.LibsndfileError as e:
    # Its message quotes the path as Python bytes (b'...'); the caller names the file.
    # For a file it cannot parse its MP3 reader says the file "does not exist".
    cause = (LIBSNDFILE_CANNOT_PARSE if "does not exist" in e.error_string and path.is_file()
             else e.error_string)
    raise RuntimeError(cause) from None
  with opened as f:
    rate = f.samplerate
    start = int(round(offset_seconds * rate))
    frames = -1 if duration_seconds is None else max(1, int(round(duration_seconds * rate)))
    if start:
      f.seek(min(start, f.frames))
    samples = f.read(frames=frames, dtype="float32", always_2d=True)
  return samples, rate


def ffmpeg_binary() -> str:
  import imageio_ffmpeg  # pylint: disable=g-import-not-at-top
  return imageio_ffmpeg.get_ffmpeg_exe()


def _decode_ffmpeg(path: Path, offset_seconds: float, duration_seconds: Optional[float]):
  import soundfile  # pylint: disable=g-import-not-at-top
  with tempfile.TemporaryDirectory() as tmp:
    out = Path(tmp) / "decoded.wav"
    command = [ffmpeg_binary(), "-nostdin", "-v", "error", "-y"]
    if offset_seconds:
      command += ["-ss", f"{offset_seconds:.6f}"]
    command += ["-i", str(path)]
    if duration_seconds is not None:
      command += ["-t", f"{duration_seconds:.6f}"]
    command += ["-vn", "-map", "0:a:0", "-acodec", "pcm_f32le", "-f", "wav", str(out)]
    result = subprocess.run(command, capture_output=True, check=False)
    if result.returncode != 0 or not out.exists():
      stderr = result.stderr.decode("utf-8", "replace")
      if "matches no streams" in stderr:  # ffmpeg's last line would blame the output file.
        raise RuntimeError("no audio stream in the file")
      message = stderr.strip().splitlines()
      raise RuntimeError(message[-1] if message else f"ffmpeg exited with {result.returncode}")
    samples, rate = soundfile.read(os.fsencode(out), dtype="float32", always_2d=True)
  return samples, rate


def resample(waveform: np.ndarray, source_rate_hz: int, target_rate_hz: int) -> np.ndarray:
  """float32 [samples] at source rate -> [ceil(samples * target / source)] at target rate."""
  if source_rate_hz == target_rate_hz:
    return waveform.astype(np.float32)
  import librosa  # pylint: disable=g-import-not-at-top
  expected = int(math.ceil(len(waveform) * target_rate_hz / source_rate_hz))
  out = librosa.resample(waveform, orig_sr=source_rate_hz, target_sr=target_rate_hz,
                         res_type="soxr_hq")
  return librosa.util.fix_length(out, size=expected).astype(np.float32)


def mix_down(samples: np.ndarray) -> np.ndarray:
  """[frames, channels] -> float32 [frames], the mean of the channels.

  A matrix-vector product: numpy's `mean(axis=1)` over a few interleaved channels
  is a strided reduction about 50 times slower (22 ms for 30 s of 44.1 kHz stereo).
  """
  channels = samples.shape[1]
  return samples.astype(np.float32, copy=False) @ np.full(channels, 1.0 / channels, np.float32)


def _decoders_for(path: Path):
  """(name, decode function) pairs to try for `path`, fastest first (module docstring)."""
  suffix = path.suffix.lower()
  decoders = []
  if suffix == ".wav":
    decoders.append(("tensorflow-io", _decode_tfio))
  if suffix in _SOUNDFILE_EXTENSIONS:
    decoders.append(("libsndfile", _decode_soundfile))
  if suffix in _TFIO_EXTENSIONS and suffix != ".wav":
    decoders.append(("tensorflow-io", _decode_tfio))
  decoders.append(("ffmpeg", _decode_ffmpeg))
  if suffix not in _SOUNDFILE_EXTENSIONS:
    decoders.append(("libsndfile", _decode_soundfile))
  return decoders


def read_audio(path, sample_rate_hz: int, offset_seconds: float = 0.0,
               duration_seconds: Optional[float] = None) -> np.ndarray:
  """Reads `path` to float32 mono [samples] at `sample_rate_hz`.

  Args:
    path: any audio file that tensorflow-io, libsndfile or ffmpeg reads.
    sample_rate_hz: output rate (Hz).
    offset_seconds: where to start reading (seconds from the file's start).
    duration_seconds: how much to read (seconds); None reads to the end. With both,
      only that window is decoded (where the decoder can seek), so long files can
      be read piecewise.

  Raises:
    AudioReadError: the file is missing, empty, not audio, or holds no samples
      in the window, or non-finite samples, or samples beyond MAX_PEAK; the
      message names the file and cause.
  """
  path = Path(path)
  if not path.is_file():
    raise AudioReadError(path, "no such file" if not path.exists() else "not a regular file")
  if path.stat().st_size == 0:
    raise AudioReadError(path, "empty file (0 bytes)")
  causes = []
  for name, decode in _decoders_for(path):
    try:
      samples, rate = decode(path, offset_seconds, duration_seconds)
    except Exception as e:  # pylint: disable=broad-except  # Each decoder raises its own types.
      causes.append(f"{name}: {_one_line(e)}")
      continue
    if samples.ndim != 2 or samples.shape[0] == 0 or rate <= 0:
      causes.append(f"{name}: no audio samples decoded")
      continue
    if duration_seconds is not None:  # Decoders return whole packets (MP3: 1,152 samples).
      samples = samples[:max(1, int(round(duration_seconds * rate)))]
    mono = mix_down(samples)
    peak = max(float(mono.max()), -float(mono.min()))  # NaN and inf propagate; no temporaries.
    if not math.isfinite(peak):
      raise AudioReadError(path, "contains NaN or infinite samples")
    if peak > MAX_PEAK:
      raise AudioReadError(path, f"samples reach {peak:.3g}, far outside full scale [-1, 1] "
                           "(float audio must be scaled to [-1, 1])")
    return resample(mono, int(rate), sample_rate_hz)
  raise AudioReadError(path, "not readable as audio (" + "; ".join(causes) + ")")


def duration_seconds(path) -> float:
  """The file's length in seconds, from its header where a decoder gives one (no decoding).

  Raises AudioReadError when no decoder can tell.
  """
  path = Path(path)
  try:
    import soundfile  # pylint: disable=g-import-not-at-top
    info = soundfile.info(os.fsencode(path))
    if 0 < info.frames < _UNKNOWN_FRAMES and info.samplerate > 0:
      return info.frames / info.samplerate
  except Exception:  # pylint: disable=broad-except  # Not a libsndfile format: ask ffmpeg.
    pass
  result = subprocess.run([ffmpeg_binary(), "-nostdin", "-hide_banner", "-i", str(path)],
                          capture_output=True, check=False)
  match = re.search(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)",
                    result.stderr.decode("utf-8", "replace"))
  if not match:
    raise AudioReadError(path, "cannot tell its duration (not audio, or damaged)")
  hours, minutes, seconds = match.groups()
  return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def limit_peaks(waveforms: np.ndarray, peak: float = PEAK_LIMIT) -> np.ndarray:
  """Scales down each song [num_songs, samples] whose peak exceeds `peak` (no clipping).

  Works in place on a float32 array (no |x| or scaled copy of whole songs: a 10-minute,
  5-output interpolation would otherwise hold two more copies of its outputs) and
  returns it.
  """
  waveforms = np.asarray(waveforms, np.float32)
  peaks = np.maximum(waveforms.max(axis=-1, keepdims=True), -waveforms.min(axis=-1, keepdims=True))
  waveforms *= np.minimum(1.0, peak / np.maximum(peaks, 1e-12))
  return waveforms


def write_audio(path, waveform: np.ndarray, sample_rate_hz: int, overwrite: bool = False) -> Path:
  """Writes float32 mono [samples] to `path`; the format follows the extension.

  WAV and FLAC are 16-bit PCM through libsndfile, rounded to the nearest step here
  (libsndfile's own conversion rounds WAV samples down: half a step of DC, and silence
  written as -1s); MP3 (LAME VBR quality 2: ffmpeg's default of 32 kb/s at 22050 Hz
  cut everything above 9 kHz), Ogg, Opus and M4A go through ffmpeg. The file is
  written under a temporary name and renamed into place, so a failed write leaves
  nothing behind. An existing file is kept unless `overwrite`.
  """
  path = Path(path)
  if path.exists() and not overwrite:
    raise AudioWriteError(path, "already exists (not overwritten)")
  waveform = np.clip(np.nan_to_num(np.asarray(waveform, np.float32).reshape(-1)), -1.0, 1.0)
  suffix = path.suffix.lower()
  tmp = paths.temporary_beside(path)
  try:
    import soundfile  # pylint: disable=g-import-not-at-top
    if suffix in _SOUNDFILE_WRITE_FORMATS:
      # In place on `waveform` (already a clipped copy): a 10-minute song is 53 MB a copy.
      np.round(np.multiply(waveform, PCM_16_FULL_SCALE, out=waveform), out=waveform)
      soundfile.write(os.fsencode(tmp), waveform.astype(np.int16), sample_rate_hz,
                      subtype=_SOUNDFILE_WRITE_FORMATS[suffix])
    else:
      with tempfile.TemporaryDirectory() as work:
        wav = Path(work) / "in.wav"
        soundfile.write(os.fsencode(wav), waveform, sample_rate_hz, subtype="FLOAT")
        result = subprocess.run(
            [ffmpeg_binary(), "-nostdin", "-v", "error", "-y", "-i", str(wav),
             *_FFMPEG_ENCODER_OPTIONS.get(suffix, []), "-f",
             {".mp3": "mp3", ".ogg": "ogg", ".opus": "opus", ".m4a": "ipod"}.get(suffix, "wav"),
             str(tmp)], capture_output=True, check=False)
        if result.returncode != 0:
          raise RuntimeError(result.stderr.decode("utf-8", "replace").strip()[-200:])
    os.replace(tmp, path)
  except Exception as e:  # pylint: disable=broad-except
    tmp.unlink(missing_ok=True)
    raise AudioWriteError(path, _one_line(e)) from None
  except BaseException:  # Ctrl-C or SIGTERM mid-write: no partial file either.
    tmp.unlink(missing_ok=True)
    raise
  return path
