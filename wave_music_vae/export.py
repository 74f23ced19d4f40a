"""SavedModel export for TF Serving, and loading an export back as an inference `Backend`.

A `ServingModule` (a `tf.Module`, separate from the training model, as DDSP's
training/inference.py) wraps a trained `WaveMusicVAE` and exposes explicit
signatures with named inputs and outputs. Waveforms are float32 in [-1, 1] at the
model's `sample_rate_hz`; batch comes first. `clip` is `config.clip_samples`.

  signature          inputs                                     outputs
  encode             waveform [batch, samples]                  z, mu, sigma [batch, z_size]
  encode_refined     waveform [batch, samples],                 z (mu refined), mu [batch, z_size]
                     refine_steps []
  decode             z [batch, z_size]                          waveform [batch, clip],
                                                                log_mel [batch, frames, n_mels]
  decode_with_iters  z [batch, z_size], griffin_lim_iters []    waveform, log_mel (as decode)
  reconstruct        waveform [batch, samples]                  waveform [batch, clip]
  interpolate        waveform_1, waveform_2 [batch, samples],   waveform [batch, num_steps, clip]
                     num_steps []
  sample             num_samples [], temperature [], seed []    waveform [num_samples, clip]
  tweak              waveform [batch, samples], dimensions [k], waveform [batch, clip],
                     dimension_values [k], flatten_factor [],   z [batch, z_size]
                     attribute [] (string), attribute_amount []
  metadata           unused [] (send 0; TF Serving's REST API   config_json, sample_rate_hz,
                     needs an input)                            clip_samples, min_samples, z_size,
                                                                griffin_lim_iters, package_version,
                                                                attribute_names [n],
                                                                attribute_vectors [n, z_size]
`encode_refined` takes `refine_steps` (0 to `refinement.MAX_STEPS`) Adam steps on z from mu
towards the code the decoder reconstructs the clip best from (`refinement`): a
better code for `decode` to render, at the cost of a decoder pass, forward and
backward, per step.

Each signature with a waveform has a `_wav` variant (`encode_wav`, `encode_refined_wav`,
`decode_wav`, `reconstruct_wav`, `interpolate_wav`, `sample_wav`, `tweak_wav`) that takes
WAV files as string tensors (`wav_bytes [batch]`, or `wav_bytes_1`, `wav_bytes_2`) and returns
them as `waveform_bytes` (`[batch]`, `[batch, num_steps]`; `tweak_wav` also returns
`z`): 16-bit PCM mono at the model's rate, decoded with `tf.audio.decode_wav`
(multichannel files are mixed down) and written with `tf.audio.encode_wav`. TF Serving
base64-encodes outputs whose name ends in `_bytes`, so REST clients send and receive
`{"b64": ...}` instead of megabytes of JSON floats. `serving_default` is
`reconstruct_wav`: one WAV in, the model's rendering of it out, in the row
(`instances`) form every REST client can send.

Lengths: the model hears one clip. A longer waveform is cropped to its first `clip`
samples; a shorter one is zero-padded at the end (as training pads short songs), down
to `min_samples = ceil(MIN_CLIP_FRACTION * clip)`; below that it is an error. Whole
songs are cut into windows and stitched by `wave_music_vae_generate --saved_model`.

Latent edits in `tweak` start from the encoder mean and apply, in the order of
`wave_music_vae_generate`'s `generation.LatentEdit` (explicit values last, so that they
hold), `latent.flatten(flatten_factor)`, `latent.add_attribute(vector of attribute,
attribute_amount)` and `latent.set_dimensions(dimensions, dimension_values)`; an empty
`attribute` adds nothing. `interpolate` decodes `latent.slerp` between the encoder
means of row i of each input, endpoints included.

Bad requests give an InvalidArgumentError whose message names the input and says
what is expected, never a crash: every input is declared with unknown rank and its
rank, sizes and values are checked in-graph (TF Serving does no shape checks of its
own, and a rank declared in the signature would let TF's graph optimiser fold a rank
check away). Wrong dtypes are refused by TensorFlow when the signature is called.

Only core TensorFlow ops are used, so TF Serving's stock server loads the export.
`export_model` writes TF Serving's layout `DIR/<model_name>/<version>/`, never over an
existing version; the config and attribute vectors are also copied to `assets.extra/`
for readers without TensorFlow.
"""

import json
import math
import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np
import tensorflow as tf

from wave_music_vae import __version__
from wave_music_vae import audio_io
from wave_music_vae import checkpoints
from wave_music_vae import config as config_lib
from wave_music_vae import latent
from wave_music_vae import locks
from wave_music_vae import paths
from wave_music_vae import refinement

DEFAULT_MODEL_NAME = "wave_music_vae"
MIN_CLIP_FRACTION = 0.5          # Shortest accepted input, as a fraction of one clip.
MAX_CLIPS = 256                  # Most clips one request may send or ask the decoder for.
MAX_GRIFFIN_LIM_ITERS = 1000
SAVED_MODEL_FILE = "saved_model.pb"
EXTRA_ASSETS_DIR = "assets.extra"  # TF Serving's folder for files the graph does not load.
# The lock file of a local export's staging folder `.partial-<version>-<id>` (`_staging_beside`).
STAGING_LOCK_PATTERN = re.compile(r"(\.partial-\d+-[0-9a-f]{8})\.lock")


class ExportError(Exception):
  """An export that cannot be written, or a signature call that the export refused."""


def _spec(dtype, name: str) -> tf.TensorSpec:
  """An input of unknown rank: its rank is checked in-graph (see the module docstring)."""
  return tf.TensorSpec(None, dtype, name=name)


def _check(condition, template: str, *values) -> tf.Operation:
  """An assertion whose message is `template` with `{}` filled from `values` (tensors)."""
  message = tf.strings.format(template, values) if values else template
  return tf.debugging.Assert(condition, [message])


def _after(checks, tensor: tf.Tensor) -> tf.Tensor:
  """`tensor`, computed only once every check in `checks` has passed."""
  with tf.control_dependencies(checks):
    return tf.identity(tensor)


def _with_rank(tensor: tf.Tensor, rank: int) -> tf.Tensor:
  """`tensor` (declared with unknown rank), checked at run time to have `rank` dimensions.

  EnsureShape's own error names the input: "Shape of tensor waveform [22050] is not
  compatible with expected shape [?,?]".
  """
  return tf.ensure_shape(tensor, [None] * rank)


def _finite_scalar(tensor: tf.Tensor, name: str, minimum: float = -latent.MAX_EDIT,
                   maximum: float = latent.MAX_EDIT, above_minimum: bool = False) -> tf.Tensor:
  """A float32 scalar input that must be finite and in [minimum, maximum] (or
  (minimum, maximum] with `above_minimum`); the bounds default to the CLI's for edits."""
  tensor = _with_rank(tensor, 0)
  low_ok = tensor > minimum if above_minimum else tensor >= minimum
  ok = tf.math.is_finite(tensor) & low_ok & (tensor <= maximum)
  interval = f"{'(' if above_minimum else '['}{minimum:g}, {maximum:g}]"
  return _after([_check(ok, f"{name} must be a finite number in {interval}; got {{}}", tensor)],
                tensor)


def limit_peaks(waveforms: tf.Tensor) -> tf.Tensor:
  """[..., samples] -> the same, each row whose peak exceeds audio_io.PEAK_LIMIT scaled
  down to it (as wave_music_vae_generate does to each song), never clipped."""
  peaks = tf.reduce_max(tf.abs(waveforms), axis=-1, keepdims=True)
  return waveforms * tf.minimum(1.0, audio_io.PEAK_LIMIT / tf.maximum(peaks, 1e-12))


def _int_scalar(tensor: tf.Tensor, name: str, minimum: int, maximum: int) -> tf.Tensor:
  """An int32 scalar input in [minimum, maximum]."""
  tensor = _with_rank(tensor, 0)
  return _after([_check((tensor >= minimum) & (tensor <= maximum),
                        f"{name} must be in [{minimum}, {maximum}]; got {{}}", tensor)], tensor)


def fit_to_clip(waveforms: tf.Tensor, clip_samples: int) -> tf.Tensor:
  """[batch, n] -> [batch, clip_samples]: the first clip_samples, zero-padded at the end."""
  waveforms = waveforms[:, :clip_samples]
  missing = clip_samples - tf.shape(waveforms)[1]
  return tf.ensure_shape(tf.pad(waveforms, [[0, 0], [0, missing]]), [None, clip_samples])


class ServingModule(tf.Module):
  """The export's signatures over a trained model (see the module docstring)."""

  def __init__(self, loaded: checkpoints.LoadedModel):
    super().__init__(name="wave_music_vae_serving")
    config = loaded.config
    model = loaded.model
    # The Keras model is not an attribute: TF's saver would walk its Keras variables as
    # well as the tf.Variables inside them, save each twice, and TF1-style loaders (TF
    # Serving, saved_model_cli run) would restore the wrong copy. The tf.Variables the
    # functions capture (seed states included) are listed instead, as Keras's own
    # ExportArchive does; the functions below close over the model.
    self.model_variables = [variable.value for variable in model.variables]
    self._config = config
    self._config_json = config.to_json()
    self._min_samples = int(math.ceil(MIN_CLIP_FRACTION * config.clip_samples))
    names = sorted(loaded.attributes)
    self._attribute_names = names
    self._attribute_vectors = np.zeros([len(names), config.z_size], np.float32)
    for i, name in enumerate(names):
      self._attribute_vectors[i] = loaded.attributes[name]
    clips = tf.TensorSpec([None, config.clip_samples], tf.float32)
    latents = tf.TensorSpec([None, config.z_size], tf.float32)
    log_mels = tf.TensorSpec([None, config.num_frames, config.n_mels], tf.float32)
    scalar_int = tf.TensorSpec([], tf.int32)
    # Shared by the signatures, so each heavy graph is traced and stored once.
    self._encode = tf.function(model.encode, input_signature=[clips])
    self._decode_log_mel = tf.function(
        lambda z: tf.cast(model.decode(z), tf.float32), input_signature=[latents])
    self._sample_log_mel = tf.function(
        lambda n, temperature, seed: tf.cast(model.sample(n, temperature, seed), tf.float32),
        input_signature=[scalar_int, tf.TensorSpec([], tf.float32), scalar_int])
    self._to_waveform = tf.function(model.to_waveform,
                                    input_signature=[log_mels, scalar_int])
    self._refine = tf.function(
        lambda clips, steps: refinement.refine_encoding(model, clips, steps),
        input_signature=[clips, scalar_int])

  # Input checks and conversions, traced into each signature with its input names.

  def _clips(self, waveform: tf.Tensor, name: str) -> tf.Tensor:
    """A waveform input [batch, samples] -> checked clips [batch, clip_samples]."""
    config = self._config
    waveform = _with_rank(waveform, 2)
    batch, samples = tf.unstack(tf.shape(waveform))
    checks = [
        _check(batch > 0, f"{name} is an empty batch (shape {{}}); send at least one row",
               tf.shape(waveform)),
        _check(batch <= MAX_CLIPS, f"{name} has {{}} rows; at most {MAX_CLIPS} per request",
               batch),
        _check(samples >= self._min_samples,
               f"{name} has {{}} samples per row; the model needs at least {self._min_samples} "
               f"({self._min_samples / config.sample_rate_hz:g} s at {config.sample_rate_hz} Hz)",
               samples),
        _check(tf.reduce_all(tf.math.is_finite(waveform)),
               f"{name} has NaN or infinite samples"),
        _check(tf.reduce_max(tf.abs(waveform)) <= audio_io.MAX_PEAK,
               f"{name} has samples up to {{}}, far outside full scale [-1, 1] (float audio "
               "must be scaled to [-1, 1])", tf.reduce_max(tf.abs(waveform))),
    ]
    return fit_to_clip(_after(checks, waveform), config.clip_samples)

  def _wav_clip(self, wav: tf.Tensor, name: str) -> tf.Tensor:
    """One WAV file (string scalar) -> a checked mono clip [clip_samples]."""
    rate = self._config.sample_rate_hz
    size = tf.strings.length(wav)
    header = tf.strings.substr(tf.strings.join([wav, "\0" * 44]), 0, 44)

    def number_at(offset, length):
      """The little-endian unsigned integer of `length` bytes at `offset` of the header."""
      raw = tf.io.decode_raw(tf.strings.substr(header, offset, length), tf.uint8)
      return tf.reduce_sum(tf.cast(raw, tf.int64) * 256 ** tf.range(length, dtype=tf.int64))

    is_wav = ((tf.strings.substr(header, 0, 4) == "RIFF")
              & (tf.strings.substr(header, 8, 4) == "WAVE"))
    declared = number_at(4, 4)     # RIFF chunk size: the file's bytes after the first 8.
    # A WAV written to a pipe declares no length; decode_wav refuses its data chunk.
    streamed = is_wav & (declared == 0xFFFFFFFF)
    complete = (size >= 44) & ((declared + 8 <= tf.cast(size, tf.int64)) | (declared == 0))
    first_chunk = tf.strings.substr(header, 12, 4)
    sample_format, bits = number_at(20, 2), number_at(34, 2)
    # Each condition holds unless the ones before it hold, so one message names the cause.
    whole = is_wav & ~streamed & complete
    fmt_first = whole & (first_chunk == "fmt ")
    wav = _after([
        _check(is_wav, f"{name}: not a WAV file (no RIFF/WAVE header); send 16-bit PCM WAV"),
        _check(~streamed, f"{name}: a streamed WAV (its header declares no length, as a WAV "
               "written to a pipe does), which tf.audio.decode_wav cannot read; send a WAV "
               "written to a file"),
        _check(~is_wav | streamed | complete, f"{name}: a truncated WAV file ({{}} bytes; its "
               "header declares {})", size, declared + 8),
        _check(~whole | fmt_first, f"{name}: a WAV whose first chunk is {{}}, not \"fmt \": "
               "tf.audio.decode_wav reads only WAVs that begin with their format chunk; send "
               "a plain 16-bit PCM WAV", first_chunk),
        _check(~fmt_first | (sample_format != 0xFFFE), f"{name}: a WAVE_FORMAT_EXTENSIBLE WAV "
               "(as written for more than two channels), which tf.audio.decode_wav cannot read; "
               "send plain 16-bit PCM (e.g. ffmpeg -i IN -ac 1 -c:a pcm_s16le OUT.wav)"),
        _check(~fmt_first | (sample_format == 0xFFFE) | ((sample_format == 1) & (bits == 16)),
               f"{name}: a WAV of {{}}-bit samples in format {{}} (1 is PCM, 3 is float); send "
               "16-bit PCM WAV", bits, sample_format),
    ], wav)
    audio, file_rate = tf.audio.decode_wav(wav)
    mono = tf.reduce_mean(audio, axis=1)
    checks = [
        _check(file_rate == rate,
               f"{name}: a WAV at {{}} Hz; the model takes {rate} Hz (resample before sending)",
               file_rate),
        _check(tf.size(mono) >= self._min_samples,
               f"{name}: a WAV of {{}} samples; the model needs at least {self._min_samples} "
               f"({self._min_samples / rate:g} s at {rate} Hz)", tf.size(mono)),
    ]
    return fit_to_clip(_after(checks, mono)[tf.newaxis], self._config.clip_samples)[0]

  def _wav_clips(self, wav_bytes: tf.Tensor, name: str) -> tf.Tensor:
    """A WAV input, string [batch] -> checked clips [batch, clip_samples]."""
    wav_bytes = _with_rank(wav_bytes, 1)
    batch = tf.size(wav_bytes)
    wav_bytes = _after([
        _check(batch > 0, f"{name} is an empty batch; send at least one WAV file"),
        _check(batch <= MAX_CLIPS, f"{name} has {{}} files; at most {MAX_CLIPS} per request",
               batch),
    ], wav_bytes)
    return tf.map_fn(lambda wav: self._wav_clip(wav, name), wav_bytes,
                     fn_output_signature=tf.TensorSpec([self._config.clip_samples], tf.float32))

  def _latents(self, z: tf.Tensor) -> tf.Tensor:
    """A z input [batch, z_size] -> checked."""
    z_size = self._config.z_size
    z = _with_rank(z, 2)
    checks = [
        _check(tf.shape(z)[0] > 0, "z is an empty batch (shape {}); send at least one row",
               tf.shape(z)),
        _check(tf.shape(z)[0] <= MAX_CLIPS,
               f"z has {{}} rows; at most {MAX_CLIPS} per request", tf.shape(z)[0]),
        _check(tf.shape(z)[1] == z_size, f"z must be [batch, {z_size}]; got shape {{}}",
               tf.shape(z)),
        _check(tf.reduce_all(tf.math.is_finite(z)), "z has NaN or infinite values"),
    ]
    return tf.ensure_shape(_after(checks, z), [None, z_size])

  def _wav_bytes(self, waveforms: tf.Tensor) -> tf.Tensor:
    """waveforms [..., clip_samples] -> 16-bit PCM mono WAV files, string [...]."""
    flat = tf.reshape(waveforms, [-1, self._config.clip_samples])
    wavs = tf.map_fn(
        lambda w: tf.audio.encode_wav(tf.clip_by_value(w, -1.0, 1.0)[:, tf.newaxis],
                                      self._config.sample_rate_hz),
        flat, fn_output_signature=tf.string)
    return tf.reshape(wavs, tf.shape(waveforms)[:-1])

  # The work of each signature, on checked inputs.

  def _decode(self, z, griffin_lim_iters=None):
    iterations = self._config.griffin_lim_iters if griffin_lim_iters is None else griffin_lim_iters
    log_mel = self._decode_log_mel(z)
    return self._to_waveform(log_mel, tf.cast(iterations, tf.int32)), log_mel

  def _encode_refined(self, clips, refine_steps):
    refine_steps = _int_scalar(refine_steps, "refine_steps", 0, refinement.MAX_STEPS)
    refined, mu = self._refine(clips, refine_steps)
    return {"z": refined, "mu": mu}

  def _reconstruct(self, clips):
    _, mu, _ = self._encode(clips)
    return limit_peaks(self._decode(mu)[0])

  def _interpolate(self, clips_1, clips_2, num_steps):
    num_steps = _int_scalar(num_steps, "num_steps", 2, MAX_CLIPS)
    batch = tf.shape(clips_1)[0]
    checks = [
        _check(batch == tf.shape(clips_2)[0],
               "the two inputs must hold the same number of rows; got {} and {}",
               batch, tf.shape(clips_2)[0]),
        _check(batch * num_steps <= MAX_CLIPS,
               f"rows x num_steps must be at most {MAX_CLIPS}; got {{}}", batch * num_steps),
    ]
    num_steps = _after(checks, num_steps)
    _, mu_1, _ = self._encode(clips_1)
    _, mu_2, _ = self._encode(clips_2)
    path = latent.slerp(mu_1[:, tf.newaxis], mu_2[:, tf.newaxis],
                        tf.linspace(0.0, 1.0, num_steps))            # [batch, steps, z_size]
    waveforms, _ = self._decode(tf.reshape(path, [-1, self._config.z_size]))
    return limit_peaks(tf.reshape(waveforms, [batch, num_steps, self._config.clip_samples]))

  def _sample(self, num_samples, temperature, seed):
    num_samples = _int_scalar(num_samples, "num_samples", 1, MAX_CLIPS)
    temperature = _finite_scalar(temperature, "temperature", 0.0, latent.MAX_TEMPERATURE,
                                 above_minimum=True)
    seed = _with_rank(seed, 0)
    log_mel = self._sample_log_mel(num_samples, temperature, seed)
    return limit_peaks(self._to_waveform(log_mel, tf.constant(self._config.griffin_lim_iters)))

  def _attribute_vector(self, attribute, amount):
    """The vector named by `attribute` ("" for none), checked; and its checked amount."""
    attribute = _with_rank(attribute, 0)
    amount = _finite_scalar(amount, "attribute_amount")
    names = tf.constant(self._attribute_names, tf.string, shape=[len(self._attribute_names)])
    matches = tf.where(tf.equal(names, attribute))[:, 0]
    carried = ", ".join(self._attribute_names) or "none"
    known = tf.debugging.Assert((attribute == "") | (tf.size(matches) == 1), [tf.strings.join(
        ["unknown attribute: ", attribute, f" (this export carries: {carried})"])])
    vector = tf.reduce_sum(tf.gather(tf.constant(self._attribute_vectors), matches), axis=0)
    return _after([known], vector), amount

  def _tweak(self, clips, dimensions, dimension_values, flatten_factor, attribute,
             attribute_amount):
    z_size = self._config.z_size
    dimensions = _with_rank(dimensions, 1)
    dimension_values = _with_rank(dimension_values, 1)
    checks = [
        _check(tf.reduce_all((dimensions >= 0) & (dimensions < z_size)),
               f"dimensions must lie in [0, {z_size}); got {{}}", dimensions),
        _check(tf.size(dimensions) == tf.size(dimension_values),
               "dimensions and dimension_values must have the same length; got {} and {}",
               tf.size(dimensions), tf.size(dimension_values)),
        _check(tf.reduce_all(tf.math.is_finite(dimension_values)
                             & (tf.abs(dimension_values) <= latent.MAX_EDIT)),
               f"dimension_values must be finite numbers in [-{latent.MAX_EDIT:g}, "
               f"{latent.MAX_EDIT:g}]; got {{}}", dimension_values),
    ]
    dimensions = _after(checks, dimensions)
    flatten_factor = _finite_scalar(flatten_factor, "flatten_factor", 0.0, 1.0)
    vector, amount = self._attribute_vector(attribute, attribute_amount)
    _, mu, _ = self._encode(clips)
    z = latent.flatten(mu, flatten_factor)
    z = latent.add_attribute(z, vector, amount)
    z = latent.set_dimensions(z, dimensions, dimension_values)
    return limit_peaks(self._decode(z)[0]), z

  # Signatures.

  @tf.function(input_signature=[_spec(tf.float32, "waveform")])
  def encode(self, waveform):
    """waveform [batch, samples] -> z (a draw), mu, sigma, each [batch, z_size]."""
    z, mu, sigma = self._encode(self._clips(waveform, "waveform"))
    return {"z": z, "mu": mu, "sigma": sigma}

  @tf.function(input_signature=[_spec(tf.string, "wav_bytes")])
  def encode_wav(self, wav_bytes):
    """wav_bytes [batch] -> z, mu, sigma, each [batch, z_size]."""
    z, mu, sigma = self._encode(self._wav_clips(wav_bytes, "wav_bytes"))
    return {"z": z, "mu": mu, "sigma": sigma}

  @tf.function(input_signature=[_spec(tf.float32, "waveform"), _spec(tf.int32, "refine_steps")])
  def encode_refined(self, waveform, refine_steps):
    """waveform [batch, samples], refine_steps [] -> z (refined), mu, each [batch, z_size]."""
    return self._encode_refined(self._clips(waveform, "waveform"), refine_steps)

  @tf.function(input_signature=[_spec(tf.string, "wav_bytes"), _spec(tf.int32, "refine_steps")])
  def encode_refined_wav(self, wav_bytes, refine_steps):
    """wav_bytes [batch], refine_steps [] -> z (refined), mu, each [batch, z_size]."""
    return self._encode_refined(self._wav_clips(wav_bytes, "wav_bytes"), refine_steps)

  @tf.function(input_signature=[_spec(tf.float32, "z")])
  def decode(self, z):
    """z [batch, z_size] -> waveform [batch, clip], log_mel [batch, frames, n_mels]."""
    waveform, log_mel = self._decode(self._latents(z))
    return {"waveform": waveform, "log_mel": log_mel}

  @tf.function(input_signature=[_spec(tf.float32, "z"), _spec(tf.int32, "griffin_lim_iters")])
  def decode_with_iters(self, z, griffin_lim_iters):
    """As `decode`, with the number of Griffin-Lim iterations given."""
    iterations = _int_scalar(griffin_lim_iters, "griffin_lim_iters", 1, MAX_GRIFFIN_LIM_ITERS)
    waveform, log_mel = self._decode(self._latents(z), iterations)
    return {"waveform": waveform, "log_mel": log_mel}

  @tf.function(input_signature=[_spec(tf.float32, "z")])
  def decode_wav(self, z):
    """z [batch, z_size] -> waveform_bytes [batch] (WAV files)."""
    return {"waveform_bytes": self._wav_bytes(limit_peaks(self._decode(self._latents(z))[0]))}

  @tf.function(input_signature=[_spec(tf.float32, "waveform")])
  def reconstruct(self, waveform):
    """waveform [batch, samples] -> waveform [batch, clip] decoded from the encoder mean."""
    return {"waveform": self._reconstruct(self._clips(waveform, "waveform"))}

  @tf.function(input_signature=[_spec(tf.string, "wav_bytes")])
  def reconstruct_wav(self, wav_bytes):
    """wav_bytes [batch] -> waveform_bytes [batch]."""
    clips = self._wav_clips(wav_bytes, "wav_bytes")
    return {"waveform_bytes": self._wav_bytes(self._reconstruct(clips))}

  @tf.function(input_signature=[_spec(tf.float32, "waveform_1"), _spec(tf.float32, "waveform_2"),
                                _spec(tf.int32, "num_steps")])
  def interpolate(self, waveform_1, waveform_2, num_steps):
    """waveform_1, waveform_2 [batch, samples], num_steps -> waveform [batch, num_steps, clip]."""
    return {"waveform": self._interpolate(self._clips(waveform_1, "waveform_1"),
                                          self._clips(waveform_2, "waveform_2"), num_steps)}

  @tf.function(input_signature=[_spec(tf.string, "wav_bytes_1"), _spec(tf.string, "wav_bytes_2"),
                                _spec(tf.int32, "num_steps")])
  def interpolate_wav(self, wav_bytes_1, wav_bytes_2, num_steps):
    """wav_bytes_1, wav_bytes_2 [batch], num_steps -> waveform_bytes [batch, num_steps]."""
    waveforms = self._interpolate(self._wav_clips(wav_bytes_1, "wav_bytes_1"),
                                  self._wav_clips(wav_bytes_2, "wav_bytes_2"), num_steps)
    return {"waveform_bytes": self._wav_bytes(waveforms)}

  @tf.function(input_signature=[_spec(tf.int32, "num_samples"), _spec(tf.float32, "temperature"),
                                _spec(tf.int32, "seed")])
  def sample(self, num_samples, temperature, seed):
    """num_samples, temperature, seed -> waveform [num_samples, clip], z ~ N(0, temperature^2)."""
    return {"waveform": self._sample(num_samples, temperature, seed)}

  @tf.function(input_signature=[_spec(tf.int32, "num_samples"), _spec(tf.float32, "temperature"),
                                _spec(tf.int32, "seed")])
  def sample_wav(self, num_samples, temperature, seed):
    """num_samples, temperature, seed -> waveform_bytes [num_samples]."""
    return {"waveform_bytes": self._wav_bytes(self._sample(num_samples, temperature, seed))}

  @tf.function(input_signature=[_spec(tf.float32, "waveform"), _spec(tf.int32, "dimensions"),
                                _spec(tf.float32, "dimension_values"),
                                _spec(tf.float32, "flatten_factor"), _spec(tf.string, "attribute"),
                                _spec(tf.float32, "attribute_amount")])
  def tweak(self, waveform, dimensions, dimension_values, flatten_factor, attribute,
            attribute_amount):
    """waveform [batch, samples] + edits -> waveform [batch, clip], edited z [batch, z_size]."""
    waveform, z = self._tweak(self._clips(waveform, "waveform"), dimensions, dimension_values,
                              flatten_factor, attribute, attribute_amount)
    return {"waveform": waveform, "z": z}

  @tf.function(input_signature=[_spec(tf.string, "wav_bytes"), _spec(tf.int32, "dimensions"),
                                _spec(tf.float32, "dimension_values"),
                                _spec(tf.float32, "flatten_factor"), _spec(tf.string, "attribute"),
                                _spec(tf.float32, "attribute_amount")])
  def tweak_wav(self, wav_bytes, dimensions, dimension_values, flatten_factor, attribute,
                attribute_amount):
    """wav_bytes [batch] + edits -> waveform_bytes [batch], edited z [batch, z_size]."""
    waveform, z = self._tweak(self._wav_clips(wav_bytes, "wav_bytes"), dimensions,
                              dimension_values, flatten_factor, attribute, attribute_amount)
    return {"waveform_bytes": self._wav_bytes(waveform), "z": z}

  @tf.function(input_signature=[_spec(tf.int32, "unused")])
  def metadata(self, unused):
    """What a consumer needs besides the signatures: config, rates, sizes, attributes.

    `unused` is ignored (send 0): TF Serving's REST API refuses to call a signature that
    has no inputs (tensorflow/serving#1676).
    """
    del unused
    config = self._config
    return {
        "config_json": tf.constant(self._config_json),
        "sample_rate_hz": tf.constant(config.sample_rate_hz, tf.int32),
        "clip_samples": tf.constant(config.clip_samples, tf.int32),
        "min_samples": tf.constant(self._min_samples, tf.int32),
        "z_size": tf.constant(config.z_size, tf.int32),
        "griffin_lim_iters": tf.constant(config.griffin_lim_iters, tf.int32),
        "package_version": tf.constant(__version__),
        "attribute_names": tf.constant(self._attribute_names, tf.string,
                                       shape=[len(self._attribute_names)]),
        "attribute_vectors": tf.constant(self._attribute_vectors),
    }

  def signatures(self) -> dict:
    """{signature name: tf.function} for `tf.saved_model.save`."""
    functions = {name: getattr(self, name) for name in (
        "encode", "encode_wav", "encode_refined", "encode_refined_wav", "decode",
        "decode_with_iters", "decode_wav", "reconstruct", "reconstruct_wav", "interpolate",
        "interpolate_wav", "sample", "sample_wav", "tweak", "tweak_wav", "metadata")}
    return {tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY: self.reconstruct_wav, **functions}


def existing_versions(model_dir) -> list:
  """Sorted integer versions under `model_dir` (sub-folders named by an integer)."""
  model_dir = paths.as_path(model_dir)
  if not model_dir.is_dir():
    return []
  return sorted(int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit())


def version_path(export_dir, model_name: str, version: Optional[int] = None) -> paths.AnyPath:
  """`export_dir/model_name/version`, checked to be new; `version` defaults to the next one.
  `export_dir` may be remote (`gs://...`).

  Raises `ExportError` for a bad name or version, a version that already exists, or a
  model folder that is a file.
  """
  if not re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9._-]*", model_name) or model_name.isdigit():
    raise ExportError(f"bad model name {model_name!r}: use letters, digits, '.', '_' or '-', "
                      "not starting with '.' and not only digits")
  model_dir = paths.as_path(export_dir) / model_name
  if model_dir.exists() and not model_dir.is_dir():
    raise ExportError(f"{model_dir}: a file, not a folder of versions")
  if version is None:
    version = max(existing_versions(model_dir), default=0) + 1
  if not 1 <= version < 2 ** 63:  # TF Serving reads versions as int64.
    raise ExportError(f"bad version {version}: versions are positive integers below 2**63")
  target = model_dir / str(version)
  _check_new(target)
  return target


def _check_new(target: paths.AnyPath) -> None:
  if target.exists():
    # A file named like a version counts too: existing_versions lists only folders.
    next_version = max([*existing_versions(target.parent), int(target.name)]) + 1
    raise ExportError(f"{target} already exists; an exported version is never overwritten "
                      f"(leave the version out to write {next_version})")


def _write_export(loaded: checkpoints.LoadedModel, folder: Path) -> None:
  """The SavedModel of `loaded`, with its config and attribute vectors, in local `folder`."""
  module = ServingModule(loaded)
  tf.saved_model.save(module, str(folder), signatures=module.signatures())
  extra = folder / EXTRA_ASSETS_DIR
  extra.mkdir()
  config_lib.save_config(loaded.config, extra / "config.json")
  (extra / checkpoints.ATTRIBUTES_FILE).write_text(json.dumps(
      {"labels": {k: [float(x) for x in v] for k, v in loaded.attributes.items()},
       "package_version": __version__, "source": loaded.source}, indent=1))


def _move_into_place(staging: Path, target: Path) -> None:
  """Renames the finished export to `target`: a server watching the model folder sees the
  whole version at once. Refuses to replace anything there."""
  _check_new(target)   # os.rename would silently replace an empty folder.
  try:
    os.rename(staging, target)
  except OSError as e:   # Another export wrote this version meanwhile.
    raise ExportError(f"{target}: appeared during the export, which was not moved there "
                      f"({e.strerror or e}); export again for the next version") from None


def _staging_beside(target: Path) -> Tuple[Path, Path, int]:
  """A new hidden folder beside `target` to write the export in; its lock file
  `<folder>.lock` and the lock's descriptor, held until the folder is gone.

  The held lock tells the folder of a running export from one a killed export left
  behind, which the next export into the model folder removes (`_remove_abandoned`).
  """
  while True:
    staging = target.parent / f".partial-{target.name}-{uuid.uuid4().hex[:8]}"
    lock = staging.with_name(staging.name + ".lock")
    held = locks.take(lock, create=True)
    if held is not None:  # None: another export removed it before this one locked it.
      staging.mkdir()
      return staging, lock, held


def _remove_abandoned(model_dir: Path) -> None:
  """Removes the staging folders of killed exports in `model_dir`, with their lock files."""
  for entry in model_dir.iterdir():
    found = STAGING_LOCK_PATTERN.fullmatch(entry.name)
    if found:
      locks.remove_abandoned(entry, [model_dir / found.group(1)])


def export_model(loaded: checkpoints.LoadedModel, export_dir, model_name: str = DEFAULT_MODEL_NAME,
                 version: Optional[int] = None) -> paths.AnyPath:
  """Writes `loaded` as `export_dir/model_name/version/` (saved_model.pb + variables/).

  `version` defaults to one above the highest present (1 in an empty folder). An
  existing version is never overwritten. On a local disk the export is written to a
  hidden folder beside it and renamed into place, so a server watching `export_dir`
  never sees half an export; such folders that killed exports left there are removed
  first. A remote `export_dir` (`gs://...`) gets it copied from a local temporary
  folder, `saved_model.pb` last. Returns the version folder.
  """
  target = version_path(export_dir, model_name, version)
  remote = isinstance(target, paths.RemotePath)
  if remote:
    staging = Path(tempfile.mkdtemp(prefix="wave_music_vae_export-"))
  else:
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned(target.parent)
    staging, lock, held = _staging_beside(target)
  try:
    _write_export(loaded, staging)
    if remote:
      # No folder rename on an object store: a server may list the version before the
      # upload ends, but cannot load it until saved_model.pb, copied last, is there (it
      # retries as its --max_num_load_retries allows). A failed upload removes it all.
      _check_new(target)
      paths.upload_tree(staging, target, last=(SAVED_MODEL_FILE,))
    else:
      _move_into_place(staging, target)
  finally:
    shutil.rmtree(staging, ignore_errors=True)
    if not remote:
      locks.release(lock, held)
  return target


def _one_line(error: tf.errors.OpError) -> str:
  """The message of a failed signature call without TensorFlow's node and stack lines."""
  found = re.search(r"assertion failed: \[(.*?)\]\n", str(error.message) + "\n")
  if found:
    return found.group(1)
  lines = [line.strip() for line in str(error.message).splitlines()]
  useful = [line for line in lines if line and not line.startswith(
      ("Graph execution error", "Detected at node", "<stack traces", "[["))]
  return useful[0] if useful else " ".join(lines)


class SavedModelBackend:
  """An `inference.Backend` over an export loaded with `tf.saved_model.load`."""

  def __init__(self, saved_model, directory: Path, config: Optional[config_lib.Config] = None):
    self.saved_model = saved_model
    self.signatures = saved_model.signatures
    self.directory = directory
    self.source = str(directory)
    metadata_signature = self.signatures["metadata"]
    # Exports made before `metadata` took its `unused` input take none.
    inputs = ({"unused": tf.constant(0)} if metadata_signature.structured_input_signature[1]
              else {})
    metadata = {k: v.numpy() for k, v in metadata_signature(**inputs).items()}
    self.config = config_lib.Config.from_dict(json.loads(metadata["config_json"].decode()))
    # pylint: disable-next=protected-access
    checkpoints.check_same_config(self.config, config, self.source)
    self.package_version = metadata["package_version"].decode()
    self.attributes: Dict[str, np.ndarray] = {
        name.decode(): vector
        for name, vector in zip(metadata["attribute_names"], metadata["attribute_vectors"])}

  def call(self, signature: str, **inputs) -> Dict[str, np.ndarray]:
    """Runs one signature on numpy inputs; a refused request raises `ExportError`."""
    try:
      outputs = self.signatures[signature](**inputs)
    except tf.errors.InvalidArgumentError as e:
      raise ExportError(f"{self.source}: {signature}: {_one_line(e)}") from None
    return {name: value.numpy() for name, value in outputs.items()}

  def encode(self, waveforms):
    """waveforms [batch, samples] -> (z, mu, sigma), each [batch, z_size]."""
    outputs = self.call("encode", waveform=tf.constant(waveforms, tf.float32))
    return outputs["z"], outputs["mu"], outputs["sigma"]

  def encode_refined(self, waveforms, refine_steps):
    """waveforms [batch, samples] -> mu refined by `refine_steps` steps, [batch, z_size]."""
    if "encode_refined" not in self.signatures:
      raise ExportError(f"{self.source}: this export has no encode_refined signature (made "
                        "before refinement existed); export the checkpoint again")
    return self.call("encode_refined", waveform=tf.constant(waveforms, tf.float32),
                     refine_steps=tf.constant(int(refine_steps), tf.int32))["z"]

  def decode(self, z, griffin_lim_iters=None):
    """z [batch, z_size] -> (waveform [batch, clip_samples], log-mel [batch, frames, n_mels])."""
    z = tf.constant(z, tf.float32)
    if griffin_lim_iters is None:
      outputs = self.call("decode", z=z)
    else:
      outputs = self.call("decode_with_iters", z=z,
                          griffin_lim_iters=tf.constant(int(griffin_lim_iters), tf.int32))
    return outputs["waveform"], outputs["log_mel"]


def version_folder(path) -> paths.AnyPath:
  """`path` if it is an export's version folder, else the highest version inside it."""
  path = paths.as_path(path)
  if (path / SAVED_MODEL_FILE).is_file():
    return path
  if not path.exists():
    raise checkpoints.CheckpointError(f"{path}: no such folder")
  versions = [v for v in existing_versions(path) if (path / str(v) / SAVED_MODEL_FILE).is_file()]
  if not versions:
    raise checkpoints.CheckpointError(
        f"{path}: not a SavedModel export (expected {SAVED_MODEL_FILE} in it, or in integer "
        "version folders under it)")
  return path / str(versions[-1])


def load_export(path, config: Optional[config_lib.Config] = None) -> SavedModelBackend:
  """Loads an export (a version folder, or a model folder: its highest version).

  `config`, when given, must match the export's own (else `CheckpointError` naming
  the differing fields).
  """
  directory = version_folder(path)
  try:
    saved_model = tf.saved_model.load(str(directory))
  except (OSError, ValueError, tf.errors.OpError) as e:
    raise checkpoints.CheckpointError(
        f"{directory}: cannot load SavedModel ({' '.join(str(e).split())[:200]})") from None
  missing = [name for name in ("metadata", "encode", "decode", "decode_with_iters")
             if name not in saved_model.signatures]
  if missing:
    raise checkpoints.CheckpointError(f"{directory}: not a wave_music_vae export (no "
                                      f"{', '.join(missing)} signature)")
  return SavedModelBackend(saved_model, directory, config)
