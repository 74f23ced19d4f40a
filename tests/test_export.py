"""The SavedModel export: TF Serving layout, signatures, REST JSON mapping, bad requests.

The tiny trained model (with two attribute vectors) is exported once per session by
the real `wave_music_vae_export` command; every test reads that export. A fresh
Python process that imports only TensorFlow loads it and calls every signature, and
the outputs are compared with the in-process Keras model.
"""

import base64
import dataclasses
import io
import json
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile
import tensorflow as tf

import serving_json
from conftest import synth_song
from wave_music_vae import audio_io
from wave_music_vae import checkpoints
from wave_music_vae import config as config_lib
from wave_music_vae import export
from wave_music_vae import generation
from wave_music_vae import inference
from wave_music_vae import latent
from wave_music_vae import locks
from wave_music_vae import refinement

PROGRAM = "wave_music_vae_export"
SAVED_MODEL_CLI = str(Path(sys.executable).parent / "saved_model_cli")

# The documented contract (docs/serving.md): signature -> (input names, output names).
SIGNATURES = {
    "encode": (["waveform"], ["mu", "sigma", "z"]),
    "encode_wav": (["wav_bytes"], ["mu", "sigma", "z"]),
    "encode_refined": (["refine_steps", "waveform"], ["mu", "z"]),
    "encode_refined_wav": (["refine_steps", "wav_bytes"], ["mu", "z"]),
    "decode": (["z"], ["log_mel", "waveform"]),
    "decode_with_iters": (["griffin_lim_iters", "z"], ["log_mel", "waveform"]),
    "decode_wav": (["z"], ["waveform_bytes"]),
    "reconstruct": (["waveform"], ["waveform"]),
    "reconstruct_wav": (["wav_bytes"], ["waveform_bytes"]),
    "serving_default": (["wav_bytes"], ["waveform_bytes"]),
    "interpolate": (["num_steps", "waveform_1", "waveform_2"], ["waveform"]),
    "interpolate_wav": (["num_steps", "wav_bytes_1", "wav_bytes_2"], ["waveform_bytes"]),
    "sample": (["num_samples", "seed", "temperature"], ["waveform"]),
    "sample_wav": (["num_samples", "seed", "temperature"], ["waveform_bytes"]),
    "tweak": (["attribute", "attribute_amount", "dimension_values", "dimensions",
               "flatten_factor", "waveform"], ["waveform", "z"]),
    "tweak_wav": (["attribute", "attribute_amount", "dimension_values", "dimensions",
                   "flatten_factor", "wav_bytes"], ["waveform_bytes", "z"]),
    "metadata": (["unused"], ["attribute_names", "attribute_vectors", "clip_samples", "config_json",
                      "griffin_lim_iters", "min_samples", "package_version", "sample_rate_hz",
                      "z_size"]),
}


def _run(command, *args):
  return subprocess.run([command, *map(str, args)], capture_output=True, text=True, timeout=600,
                        check=False)


@dataclasses.dataclass
class Exported:
  run_dir: Path
  export_dir: Path
  model_dir: Path
  result: subprocess.CompletedProcess

  @property
  def version_dir(self) -> Path:
    return self.model_dir / "4"


@pytest.fixture(scope="session")
def export_run_dir(tmp_path_factory, trained_run_dir, song_folder):
  """A copy of the tiny run, with attribute vectors 'low' and 'high' from its own encoder."""
  run_dir = tmp_path_factory.mktemp("export_run") / "run"
  shutil.copytree(trained_run_dir, run_dir)
  model = checkpoints.load(run_dir=str(run_dir)).model
  clip = model.config.clip_samples
  means = {}
  for label in ("low", "high"):
    clips = np.stack([soundfile.read(str(path), dtype="float32")[0][:clip]
                      for path in sorted((song_folder / label).glob("*.wav"))])
    means[label] = model.encode(clips)[1].numpy().mean(axis=0)
  overall = np.mean(list(means.values()), axis=0)
  checkpoints.save_attributes(run_dir, {k: v - overall for k, v in means.items()},
                              {k: 3 for k in means})
  return run_dir


@pytest.fixture(scope="session")
def exported(tmp_path_factory, export_run_dir) -> Exported:
  """The command run once, into a model folder that already holds a version 3."""
  export_dir = tmp_path_factory.mktemp("exports")
  existing = export_dir / "tiny" / "3"
  existing.mkdir(parents=True)
  (existing / "keep.txt").write_text("an older version")
  result = _run(PROGRAM, f"--run_dir={export_run_dir}", f"--export_dir={export_dir}",
                "--model_name=tiny")
  assert result.returncode == 0, result.stderr
  return Exported(export_run_dir, export_dir, export_dir / "tiny", result)


@pytest.fixture(scope="module")
def keras_model(export_run_dir):
  return checkpoints.load(run_dir=str(export_run_dir))


@pytest.fixture(scope="module")
def backend(exported):
  return inference.load_backend(saved_model=str(exported.model_dir))


def _keras_waveform(model, z, iterations=None):
  log_mel = model.decode(tf.constant(z, tf.float32))
  return model.to_waveform(log_mel, iterations).numpy(), log_mel.numpy()


def _assert_same_audio(actual, expected):
  """Waveforms equal up to rounding.

  Griffin-Lim runs the same ops in the exported graph and eagerly in Keras, but rounds
  differently, and its momentum iterations carry that into a few samples (measured: at
  most 6e-4 on clips peaking near 0.5); WAV outputs add 16-bit steps of 3e-5.
  """
  assert actual.shape == expected.shape
  error = np.abs(actual - expected)
  rms_error = np.sqrt(np.mean(error ** 2))
  assert error.max() < 2e-3 and rms_error < 1e-4, f"max {error.max()}, rms {rms_error}"


def _fit(waveforms, clip):
  """Expected length handling: the first clip samples, zero-padded at the end."""
  waveforms = waveforms[:, :clip]
  return np.pad(waveforms, [(0, 0), (0, clip - waveforms.shape[1])])


def test_command_writes_the_next_version_and_keeps_the_existing_one(exported, export_run_dir):
  assert f"to {exported.version_dir}" in exported.result.stdout
  assert sorted(p.name for p in exported.model_dir.iterdir()) == ["3", "4"]  # No partial folder.
  assert (exported.model_dir / "3" / "keep.txt").read_text() == "an older version"
  assert (exported.version_dir / "saved_model.pb").is_file()
  assert (exported.version_dir / "variables" / "variables.index").is_file()
  extra = exported.version_dir / export.EXTRA_ASSETS_DIR
  assert json.loads((extra / "config.json").read_text()) == json.loads(
      (export_run_dir / "config.json").read_text())
  assert sorted(json.loads((extra / "attributes.json").read_text())["labels"]) == ["high", "low"]


def test_command_never_overwrites_a_version(exported):
  before = sorted(p.name for p in exported.version_dir.rglob("*"))
  result = _run(PROGRAM, f"--run_dir={exported.run_dir}", f"--export_dir={exported.export_dir}",
                "--model_name=tiny", "--version=4")
  assert result.returncode == 1
  assert "4 already exists" in result.stderr and "Traceback" not in result.stderr
  assert sorted(p.name for p in exported.version_dir.rglob("*")) == before
  assert sorted(p.name for p in exported.model_dir.iterdir()) == ["3", "4"]


def test_export_to_a_remote_folder_and_generate_from_it(keras_model, remote_root):
  """`gs://` and the like go through tf.io.gfile (in-process `ram://` here): `Path` would fold
  the `//` and write a local folder named `gs:`."""
  root = f"{remote_root}/exports"
  assert str(export.export_model(keras_model, root, "m")) == f"{root}/m/1"
  assert str(export.export_model(keras_model, root + "/", "m")) == f"{root}/m/2"
  assert export.existing_versions(f"{root}/m") == [1, 2]
  assert sorted(tf.io.gfile.listdir(f"{root}/m")) == ["1", "2"]   # No staging folder left.
  assert tf.io.gfile.exists(f"{root}/m/2/{export.EXTRA_ASSETS_DIR}/config.json")
  backend = export.load_export(f"{root}/m")
  assert backend.source == f"{root}/m/2" and backend.config == keras_model.config
  clip = synth_song(1.0, seed=3)[None]
  np.testing.assert_allclose(backend.encode(clip)[1], keras_model.model.encode(clip)[1],
                             atol=1e-5)
  with pytest.raises(export.ExportError, match="already exists"):
    export.export_model(keras_model, root, "m", version=2)


def test_a_version_that_appears_during_the_export_is_not_replaced(keras_model, tmp_path,
                                                                  monkeypatch):
  """os.rename silently replaces an empty folder: the export checks again before moving."""
  save = tf.saved_model.save

  def save_then_another_export_claims_version_1(*args, **kwargs):
    save(*args, **kwargs)
    (tmp_path / "m" / "1").mkdir()
  monkeypatch.setattr(tf.saved_model, "save", save_then_another_export_claims_version_1)
  with pytest.raises(export.ExportError, match="1 already exists"):
    export.export_model(keras_model, tmp_path, "m")
  assert [p.name for p in (tmp_path / "m").iterdir()] == ["1"]    # Staging removed.
  assert list((tmp_path / "m" / "1").iterdir()) == []


def test_the_staging_folder_of_a_killed_export_is_removed_by_the_next(keras_model,
                                                                     export_run_dir, tmp_path):
  """SIGKILL leaves an export's hidden staging folder (megabytes); the lock beside it went
  with the process, so the next export into the model folder removes both. A running
  export's staging folder, whose lock is held, is left alone."""
  model_dir = tmp_path / "m"
  killed = subprocess.Popen([PROGRAM, f"--run_dir={export_run_dir}", f"--export_dir={tmp_path}",
                             "--model_name=m"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
  try:
    deadline = time.monotonic() + 300
    while (killed.poll() is None and time.monotonic() < deadline
           and not list(model_dir.glob(".partial-1-*/variables"))):
      time.sleep(0.05)
  finally:
    killed.send_signal(signal.SIGKILL)
    killed.wait()
  left = sorted(p.name for p in model_dir.iterdir())
  assert len(left) == 2 and re.fullmatch(r"\.partial-1-[0-9a-f]{8}", left[0]), left
  assert left[1] == left[0] + ".lock"
  running = model_dir / ".partial-9-0123abcd"
  running.mkdir()
  held = locks.take(model_dir / ".partial-9-0123abcd.lock", create=True)
  try:
    export.export_model(keras_model, tmp_path, "m")
    assert sorted(p.name for p in model_dir.iterdir()) == [
        ".partial-9-0123abcd", ".partial-9-0123abcd.lock", "1"]
  finally:
    locks.release(model_dir / ".partial-9-0123abcd.lock", held)


def test_export_model_refuses_bad_versions_and_names(tmp_path, keras_model):
  (tmp_path / "m" / "2").mkdir(parents=True)
  (tmp_path / "m" / "notes").mkdir()
  (tmp_path / "m" / ".partial-7-0a1b2c3d").mkdir()
  assert export.existing_versions(tmp_path / "m") == [2]
  assert export.existing_versions(tmp_path / "absent") == []
  with pytest.raises(export.ExportError, match="never overwritten.*write 3"):
    export.export_model(keras_model, tmp_path, "m", version=2)
  for version in (0, 2 ** 63):  # TF Serving reads versions as int64
    with pytest.raises(export.ExportError, match=r"positive integers below 2\*\*63"):
      export.export_model(keras_model, tmp_path, "m", version=version)
  for name in ("", "a/b", "..", "12"):
    with pytest.raises(export.ExportError, match="bad model name"):
      export.export_model(keras_model, tmp_path, name)
  assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [".partial-7-0a1b2c3d", "2",
                                                                 "notes"]
  (tmp_path / "file").write_text("not a folder")
  with pytest.raises(export.ExportError, match="file: a file, not a folder of versions"):
    export.version_path(tmp_path, "file")
  (tmp_path / "n").mkdir()
  (tmp_path / "n" / "1").write_text("a file where version 1 would go")
  with pytest.raises(export.ExportError, match="1 already exists.*write 2"):
    export.version_path(tmp_path, "n", 1)


FRESH_PROCESS = r'''
import json, sys
import numpy as np
import tensorflow as tf

export_dir, inputs_path, outputs_path = sys.argv[1:]
x = dict(np.load(inputs_path))
signatures = tf.saved_model.load(export_dir).signatures
rate = int(signatures["metadata"](unused=tf.constant(0))["sample_rate_hz"])


def wav(rows):
  return tf.stack([tf.audio.encode_wav(tf.constant(row)[:, None], rate) for row in rows])


def unwav(strings):
  decoded = [tf.audio.decode_wav(s) for s in np.ravel(strings)]
  audio = np.stack([a.numpy()[:, 0] for a, _ in decoded])
  return audio.reshape(strings.shape + audio.shape[-1:]), np.array([int(r) for _, r in decoded])


c = tf.constant
edits = dict(dimensions=c([1], tf.int32), dimension_values=c([2.5]), flatten_factor=c(0.5),
             attribute=c("high"), attribute_amount=c(1.0))
calls = {
    "metadata": dict(unused=c(0)),
    "encode": dict(waveform=c(x["long"])),
    "encode_wav": dict(wav_bytes=wav(x["long"])),
    "encode_refined": dict(waveform=c(x["long"]), refine_steps=c(5)),
    "encode_refined_wav": dict(wav_bytes=wav(x["long"]), refine_steps=c(5)),
    "decode": dict(z=c(x["z"])),
    "decode_with_iters": dict(z=c(x["z"]), griffin_lim_iters=c(4)),
    "decode_wav": dict(z=c(x["z"])),
    "reconstruct": dict(waveform=c(x["short"])),
    "reconstruct_wav": dict(wav_bytes=wav(x["short"])),
    "serving_default": dict(wav_bytes=wav(x["short"])),
    "interpolate": dict(waveform_1=c(x["long"]), waveform_2=c(x["long"][::-1]), num_steps=c(3)),
    "interpolate_wav": dict(wav_bytes_1=wav(x["long"]), wav_bytes_2=wav(x["long"][::-1]),
                            num_steps=c(3)),
    "sample": dict(num_samples=c(2), temperature=c(0.8), seed=c(5)),
    "sample_wav": dict(num_samples=c(2), temperature=c(0.8), seed=c(5)),
    "tweak": dict(waveform=c(x["long"]), **edits),
    "tweak_wav": dict(wav_bytes=wav(x["long"]), **edits),
}
outputs = {"wav_input/long": unwav(wav(x["long"]).numpy())[0],
           "wav_input/short": unwav(wav(x["short"]).numpy())[0]}
for name, inputs in calls.items():
  for key, value in signatures[name](**inputs).items():
    value = np.asarray(value.numpy())
    if key.endswith("_bytes"):
      value, outputs[f"{name}/{key}/rate"] = unwav(value)
    elif value.dtype.kind in "OS":
      value = np.char.decode(value.astype(bytes), "utf-8")
    outputs[f"{name}/{key}"] = value

# TF Serving's path: a TF1 session fed by tensor name, with no Python-side checks.
session_errors = {}
with tf.Graph().as_default(), tf.compat.v1.Session() as session:
  graph = tf.compat.v1.saved_model.load(session, ["serve"], export_dir)
  encode = graph.signature_def["encode"]
  feed, fetch = encode.inputs["waveform"].name, encode.outputs["mu"].name
  for case, value in (("wrong_rank", x["long"][0]), ("nan", np.full_like(x["long"], np.nan))):
    try:
      session.run(fetch, {feed: value})
    except tf.errors.InvalidArgumentError as e:
      session_errors[case] = e.message
  outputs["session/mu"] = session.run(fetch, {feed: x["long"]})

np.savez(outputs_path, **outputs)
print(json.dumps({"session_errors": session_errors,
                  "modules": sorted({m.split(".")[0] for m in sys.modules})}))
'''


def test_fresh_tensorflow_process_runs_every_signature_like_keras(exported, keras_model,
                                                                  tmp_path):
  model, config = keras_model.model, keras_model.config
  clip = config.clip_samples
  long = np.stack([synth_song(1.5, seed=1), synth_song(1.5, base_hz=330.0, seed=2)])
  short = synth_song(0.7, seed=3)[np.newaxis]
  z = np.random.default_rng(0).standard_normal([2, config.z_size]).astype(np.float32)
  np.savez(tmp_path / "inputs.npz", long=long, short=short, z=z)
  (tmp_path / "script.py").write_text(FRESH_PROCESS)
  result = _run(sys.executable, tmp_path / "script.py", exported.version_dir,
                tmp_path / "inputs.npz", tmp_path / "outputs.npz")
  assert result.returncode == 0, result.stderr[-3000:]
  report = json.loads(result.stdout.strip().splitlines()[-1])
  assert "tensorflow" in report["modules"]
  assert "wave_music_vae" not in report["modules"] and "tensorflow_io" not in report["modules"]
  out = dict(np.load(tmp_path / "outputs.npz"))

  metadata = {k.split("/")[1]: v for k, v in out.items() if k.startswith("metadata/")}
  assert config_lib.Config.from_dict(json.loads(metadata["config_json"].item())) == config
  assert int(metadata["sample_rate_hz"]) == config.sample_rate_hz
  assert int(metadata["clip_samples"]) == clip
  assert metadata["package_version"].item() == "0.1.0"
  assert list(metadata["attribute_names"]) == ["high", "low"]
  np.testing.assert_allclose(metadata["attribute_vectors"][0], keras_model.attributes["high"])

  # Encoder: longer clips are cropped to their first clip.
  _, mu, sigma = (t.numpy() for t in model.encode(long[:, :clip]))
  np.testing.assert_allclose(out["encode/mu"], mu, atol=1e-5)
  np.testing.assert_allclose(out["encode/sigma"], sigma, atol=1e-5)
  assert np.all(np.abs(out["encode/z"] - mu) <= 6 * sigma)
  np.testing.assert_allclose(out["session/mu"], mu, atol=1e-5)
  _, wav_mu, _ = model.encode(out["wav_input/long"][:, :clip])
  np.testing.assert_allclose(out["encode_wav/mu"], wav_mu.numpy(), atol=1e-5)

  # Refinement: the same Adam steps as in Keras, moving the codes away from mu.
  refined = refinement.refine_encoding(model, long[:, :clip], 5)[0].numpy()
  np.testing.assert_allclose(out["encode_refined/z"], refined, atol=1e-4)
  np.testing.assert_allclose(out["encode_refined/mu"], mu, atol=1e-5)
  assert np.abs(refined - mu).max() > 0.1
  np.testing.assert_allclose(
      out["encode_refined_wav/z"],
      refinement.refine_encoding(model, out["wav_input/long"][:, :clip], 5)[0].numpy(),
      atol=1e-4)

  # Decoder, Griffin-Lim inside the graph.
  waveform, log_mel = _keras_waveform(model, z)
  np.testing.assert_allclose(out["decode/log_mel"], log_mel, atol=1e-5)
  _assert_same_audio(out["decode/waveform"], waveform)
  _assert_same_audio(out["decode_with_iters/waveform"], _keras_waveform(model, z, 4)[0])
  assert np.abs(out["decode_with_iters/waveform"] - waveform).max() > 1e-2  # Iterations matter.
  _assert_same_audio(out["decode_wav/waveform_bytes"], audio_io.limit_peaks(np.array(waveform)))
  assert set(out["decode_wav/waveform_bytes/rate"]) == {config.sample_rate_hz}

  # Reconstruction: a shorter clip is zero-padded at the end.
  _, short_mu, _ = model.encode(_fit(short, clip))
  _assert_same_audio(out["reconstruct/waveform"],
                     audio_io.limit_peaks(_keras_waveform(model, short_mu)[0]))
  _, wav_short_mu, _ = model.encode(_fit(out["wav_input/short"], clip))
  wav_reconstruction = audio_io.limit_peaks(_keras_waveform(model, wav_short_mu)[0])
  for name in ("reconstruct_wav", "serving_default"):
    _assert_same_audio(out[f"{name}/waveform_bytes"], wav_reconstruction)

  # Interpolation: slerp between the encoder means of row i of each input.
  path = latent.slerp(mu[:, np.newaxis], mu[::-1][:, np.newaxis], tf.linspace(0.0, 1.0, 3))
  expected = _keras_waveform(model, tf.reshape(path, [-1, config.z_size]))[0].reshape(2, 3, clip)
  _assert_same_audio(out["interpolate/waveform"], audio_io.limit_peaks(np.array(expected)))
  assert out["interpolate_wav/waveform_bytes"].shape == (2, 3, clip)

  # Sampling, repeatable from the seed.
  expected = model.to_waveform(model.sample(2, 0.8, 5)).numpy()
  _assert_same_audio(out["sample/waveform"], audio_io.limit_peaks(np.array(expected)))
  _assert_same_audio(out["sample_wav/waveform_bytes"], audio_io.limit_peaks(np.array(expected)))

  # Tweak: flatten, then add the attribute vector, then set dimensions, as the generate
  # command's LatentEdit does: the set dimension holds its value.
  edited = latent.set_dimensions(
      latent.add_attribute(latent.flatten(mu, 0.5), keras_model.attributes["high"], 1.0),
      [1], [2.5])
  np.testing.assert_allclose(out["tweak/z"][:, 1], 2.5, atol=1e-6)
  cli_edit = generation.LatentEdit(sets=((1, 2.5),), flatten_factor=0.5,
                                   attributes=(("high", 1.0),))
  np.testing.assert_allclose(out["tweak/z"], cli_edit.apply(mu, keras_model.attributes),
                             atol=1e-5)
  np.testing.assert_allclose(out["tweak/z"], edited.numpy(), atol=1e-5)
  _assert_same_audio(out["tweak/waveform"],
                     audio_io.limit_peaks(_keras_waveform(model, edited)[0]))
  assert out["tweak_wav/waveform_bytes"].shape == (2, clip)
  edited_wav = latent.set_dimensions(
      latent.add_attribute(latent.flatten(wav_mu, 0.5), keras_model.attributes["high"], 1.0),
      [1], [2.5])
  np.testing.assert_allclose(out["tweak_wav/z"], edited_wav.numpy(), atol=1e-5)

  # TF Serving's path refuses bad input with the signature's message.
  errors = report["session_errors"]
  assert "waveform" in errors["wrong_rank"] and "[?,?]" in errors["wrong_rank"]
  assert "waveform has NaN or infinite samples" in errors["nan"]


def _saved_model_cli(*args):
  result = _run(SAVED_MODEL_CLI, *args)
  assert result.returncode == 0, result.stderr[-3000:]
  return result.stdout


def test_served_audio_is_peak_limited_like_the_generate_command():
  """Loud decodes are scaled down to PEAK_LIMIT row by row, never clipped (as the CLI does)."""
  loud = np.array([[0.5, -3.0, 1.0, 2.0], [0.1, 0.2, -0.3, 0.0]], np.float32)
  limited = export.limit_peaks(tf.constant(loud)).numpy()
  np.testing.assert_allclose(limited[0], loud[0] * audio_io.PEAK_LIMIT / 3.0, rtol=1e-6)
  np.testing.assert_array_equal(limited[1], loud[1])             # quiet rows untouched
  np.testing.assert_allclose(limited, audio_io.limit_peaks(np.array(loud)), rtol=1e-6)
  path = np.stack([loud, -2 * loud])                              # [batch, steps, samples]
  np.testing.assert_allclose(export.limit_peaks(tf.constant(path)).numpy()[1, 0],
                             -2 * loud[0] * audio_io.PEAK_LIMIT / 6.0, rtol=1e-6)


def test_saved_model_cli_lists_every_signature_with_its_names(exported):
  shown = _saved_model_cli("show", "--dir", exported.version_dir, "--all")
  blocks = {m.group(1): m.group(2) for m in re.finditer(
      r"signature_def\['(\w+)'\]:\n(.*?)(?=\nsignature_def\[|\Z)", shown, re.S)}
  documented = set(SIGNATURES)
  assert documented <= set(blocks)
  for name, (inputs, outputs) in SIGNATURES.items():
    block = blocks[name]
    assert sorted(re.findall(r"inputs\['(\w+)'\]", block)) == inputs, name
    assert sorted(re.findall(r"outputs\['(\w+)'\]", block)) == outputs, name
    assert "Method name is: tensorflow/serving/predict" in block


def test_saved_model_cli_runs_decode(exported, tmp_path):
  z = "[[" + ", ".join(["0.5"] * 8) + "]]"
  _saved_model_cli("run", "--dir", exported.version_dir, "--tag_set", "serve", "--signature_def",
                   "decode", "--input_exprs", f"z={z}", "--outdir", tmp_path)
  waveform = np.load(tmp_path / "waveform.npy")
  assert waveform.shape == (1, 22050) and np.all(np.isfinite(waveform))
  assert 0.0 < np.abs(waveform).max() <= 2.0
  assert np.load(tmp_path / "log_mel.npy").shape == (1, 87, 40)


def test_only_core_tensorflow_ops(exported):
  listed = _saved_model_cli("show", "--dir", exported.version_dir, "--tag_set", "serve",
                            "--list_ops")
  ops = set(re.findall(r"'([\w>]+)'", listed.split("contains the following ops:")[1]))
  assert "StringFormat" in ops and not any(op.startswith("IO>") for op in ops)
  # saved_model_cli does not look inside loop bodies: read every function in the graph.
  from tensorflow.core.protobuf import saved_model_pb2  # pylint: disable=g-import-not-at-top
  saved = saved_model_pb2.SavedModel.FromString(
      (exported.version_dir / "saved_model.pb").read_bytes())
  graph = saved.meta_graphs[0].graph_def
  all_ops = {n.op for n in graph.node} | {
      n.op for function in graph.library.function for n in function.node_def}
  assert {"DecodeWav", "EncodeWav", "IRFFT", "RFFT"} <= all_ops
  assert not any(op.startswith("IO>") for op in all_ops)


def _predict(signature, body: dict) -> dict:
  """A request body, as the server receives it, through a signature; the response body."""
  body = json.loads(json.dumps(body))
  specs = signature.structured_input_signature[1]
  tensors, form = serving_json.request_tensors(body, specs)
  outputs = signature(**{name: tf.constant(value, specs[name].dtype)
                         for name, value in tensors.items()})
  return json.loads(json.dumps(serving_json.response_body(
      {name: value.numpy() for name, value in outputs.items()}, form)))


def test_rest_instances_form_through_encode(backend):
  clips = np.stack([synth_song(1.0, seed=4), synth_song(1.0, seed=5)])
  response = _predict(backend.signatures["encode"],
                      {"signature_name": "encode", "instances": clips.tolist()})
  assert len(response["predictions"]) == 2 and set(response["predictions"][0]) == {"z", "mu",
                                                                                     "sigma"}
  arrays = serving_json.response_arrays(response, ["z", "mu", "sigma"])
  np.testing.assert_allclose(arrays["mu"], backend.encode(clips)[1], atol=1e-5)


def test_rest_inputs_form_through_sample_and_decode(backend):
  body = {"signature_name": "sample", "inputs": {"num_samples": 2, "temperature": 0.5, "seed": 9}}
  response = _predict(backend.signatures["sample"], body)
  waveform = serving_json.response_arrays(response, ["waveform"])["waveform"]
  assert waveform.shape == (2, backend.config.clip_samples)
  np.testing.assert_allclose(
      waveform, backend.signatures["sample"](num_samples=tf.constant(2), temperature=tf.constant(
          0.5), seed=tf.constant(9))["waveform"].numpy(), atol=1e-6)
  z = np.zeros([1, backend.config.z_size], np.float32)
  response = _predict(backend.signatures["decode"], {"inputs": {"z": z.tolist()}})
  arrays = serving_json.response_arrays(response, ["waveform", "log_mel"])
  np.testing.assert_allclose(arrays["waveform"], backend.decode(z)[0], atol=1e-6)


def test_rest_b64_form_through_serving_default(backend, tmp_path):
  rate = backend.config.sample_rate_hz
  soundfile.write(str(tmp_path / "song.wav"), synth_song(2.0, seed=6), rate, subtype="PCM_16")
  request = {"instances": [{"b64": base64.b64encode((tmp_path / "song.wav").read_bytes())
                            .decode("ascii")}]}
  response = _predict(backend.signatures["serving_default"], request)
  assert list(response["predictions"][0]) == ["b64"]
  wav_bytes = serving_json.response_arrays(response, ["waveform_bytes"])["waveform_bytes"][0]
  (tmp_path / "out.wav").write_bytes(wav_bytes)
  audio, file_rate = soundfile.read(str(tmp_path / "out.wav"), dtype="float32")
  assert file_rate == rate and audio.shape == (backend.config.clip_samples,)
  assert np.abs(audio).max() > 1e-3
  # The named-object form of the same row, and the columnar form, give the same bytes.
  named = {"instances": [{"wav_bytes": request["instances"][0]}]}
  assert _predict(backend.signatures["serving_default"], named) == response
  columnar = _predict(backend.signatures["serving_default"], {"inputs": [request["instances"][0]]})
  assert columnar["outputs"] == response["predictions"]


def test_rest_metadata_takes_an_unused_input_since_tf_serving_needs_one(backend):
  """TF Serving's REST API refuses a signature without inputs (tensorflow/serving#1676)."""
  with pytest.raises(ValueError, match="Failed to get input map"):
    serving_json.request_tensors({"inputs": {}}, {})
  response = _predict(backend.signatures["metadata"],
                      {"signature_name": "metadata", "inputs": {"unused": 0}})
  assert response["outputs"]["sample_rate_hz"] == backend.config.sample_rate_hz
  assert response["outputs"]["attribute_names"] == ["high", "low"]


def test_an_export_whose_metadata_takes_no_input_still_loads(backend, tmp_path):
  """Exports made before `metadata` took its `unused` input: saved and loaded back."""
  values = {name: value.numpy() for name, value in
            backend.signatures["metadata"](unused=tf.constant(0)).items()}
  module = tf.Module()
  module.metadata = tf.function(lambda: {name: tf.constant(value) for name, value in
                                         values.items()}, input_signature=[])
  tf.saved_model.save(module, str(tmp_path / "older"), signatures={"metadata": module.metadata})
  older = export.SavedModelBackend(tf.saved_model.load(str(tmp_path / "older")), tmp_path)
  assert older.config == backend.config and older.attributes.keys() == {"high", "low"}


def test_rest_nan_tokens_get_the_signatures_error(backend):
  body = json.loads('{"instances": [[' + ", ".join(["0.1"] * 22049 + ["NaN"]) + "]]}")
  with pytest.raises(tf.errors.InvalidArgumentError, match="waveform has NaN or infinite"):
    _predict(backend.signatures["encode"], body)
  with pytest.raises(ValueError, match="input size does not match signature"):
    _predict(backend.signatures["sample"], {"inputs": {"num_samples": 2}})


def _wav(seconds, rate, subtype="PCM_16", channels=1, wav_format="WAV"):
  buffer = io.BytesIO()
  soundfile.write(buffer, synth_song(seconds, sample_rate_hz=rate, channels=channels), rate,
                  subtype=subtype, format=wav_format)
  return buffer.getvalue()


def _streamed_wav():
  """A WAV as written to a pipe: the RIFF and data sizes say 0xFFFFFFFF (unknown)."""
  wav = bytearray(_wav(1.0, 22050))
  wav[4:8] = wav[40:44] = b"\xff\xff\xff\xff"
  return bytes(wav)


def _wav_with_list_first():
  """A WAV whose LIST (metadata) chunk comes before its format chunk."""
  wav = _wav(1.0, 22050)
  chunk = b"LIST" + (4).to_bytes(4, "little") + b"INFO"
  body = wav[12:]
  return b"RIFF" + (4 + len(chunk) + len(body)).to_bytes(4, "little") + b"WAVE" + chunk + body


CLIP = 22050
EDITS = dict(dimensions=tf.constant([0], tf.int32), dimension_values=tf.constant([1.0]),
             flatten_factor=tf.constant(0.0), attribute=tf.constant(""),
             attribute_amount=tf.constant(0.0))
BAD_REQUESTS = {
    "wrong_dtype": ("encode", lambda: dict(waveform=tf.zeros([1, CLIP], tf.float64)),
                    r"expected to be a float tensor but is a double tensor"),
    "wrong_rank": ("encode", lambda: dict(waveform=tf.zeros([CLIP])),
                   r"Shape of tensor \w*waveform\w* \[22050\] is not compatible with expected "
                   r"shape \[\?,\?\]"),
    "scalar_as_list": ("sample", lambda: dict(num_samples=tf.constant([2]),
                                              temperature=tf.constant(1.0), seed=tf.constant(0)),
                       r"num_samples\w* \[1\] is not compatible with expected shape \[\]"),
    "empty_batch": ("encode", lambda: dict(waveform=tf.zeros([0, CLIP])),
                    r"waveform is an empty batch \(shape \[0 22050\]\)"),
    "too_short": ("reconstruct", lambda: dict(waveform=tf.zeros([1, 100])),
                  r"waveform has 100 samples per row; the model needs at least 11025 "
                  r"\(0.5 s at 22050 Hz\)"),
    "nan_samples": ("encode", lambda: dict(waveform=tf.fill([1, CLIP], np.nan)),
                    "waveform has NaN or infinite samples"),
    "z_size": ("decode", lambda: dict(z=tf.zeros([1, 5])), r"z must be \[batch, 8\]; got shape"),
    "infinite_z": ("decode", lambda: dict(z=tf.fill([1, 8], np.inf)), "z has NaN or infinite"),
    "num_steps": ("interpolate", lambda: dict(waveform_1=tf.zeros([1, CLIP]),
                                              waveform_2=tf.zeros([1, CLIP]),
                                              num_steps=tf.constant(1)),
                  r"num_steps must be in \[2, 256\]; got 1"),
    "unequal_rows": ("interpolate", lambda: dict(waveform_1=tf.zeros([2, CLIP]),
                                                 waveform_2=tf.zeros([1, CLIP]),
                                                 num_steps=tf.constant(3)),
                     "the two inputs must hold the same number of rows; got 2 and 1"),
    "too_many_rows": ("encode", lambda: dict(waveform=tf.zeros([257, CLIP])),
                      "waveform has 257 rows; at most 256 per request"),
    "too_many_samples": ("sample", lambda: dict(num_samples=tf.constant(10 ** 6),
                                                temperature=tf.constant(1.0),
                                                seed=tf.constant(0)),
                         r"num_samples must be in \[1, 256\]"),
    "nan_temperature": ("sample", lambda: dict(num_samples=tf.constant(1),
                                               temperature=tf.constant(np.nan),
                                               seed=tf.constant(0)),
                        r"temperature must be a finite number in \(0, 100\]; got nan"),
    "zero_temperature": ("sample", lambda: dict(num_samples=tf.constant(1),
                                                temperature=tf.constant(0.0), seed=tf.constant(0)),
                         r"temperature must be a finite number in \(0, 100\]; got 0"),
    "huge_temperature": ("sample", lambda: dict(num_samples=tf.constant(1),
                                                temperature=tf.constant(3e38),
                                                seed=tf.constant(0)),
                         r"temperature must be a finite number in \(0, 100\]"),
    "flatten_range": ("tweak", lambda: dict(waveform=tf.zeros([1, CLIP]), **(EDITS | {
        "flatten_factor": tf.constant(5.0)})), r"flatten_factor must be a finite number in \[0, 1\]"),
    "huge_dimension_value": ("tweak", lambda: dict(waveform=tf.zeros([1, CLIP]), **(EDITS | {
        "dimension_values": tf.constant([1e38])})),
                             r"dimension_values must be finite numbers in \[-1000, 1000\]"),
    "unscaled_waveform": ("reconstruct", lambda: dict(waveform=tf.fill([1, CLIP], 1e30)),
                          r"waveform has samples up to 1e\+30, far outside full scale"),
    "refine_steps": ("encode_refined", lambda: dict(waveform=tf.zeros([1, CLIP]),
                                                    refine_steps=tf.constant(1001)),
                     r"refine_steps must be in \[0, 1000\]; got 1001"),
    "griffin_lim_iters": ("decode_with_iters", lambda: dict(
        z=tf.zeros([1, 8]), griffin_lim_iters=tf.constant(-1)),
                          r"griffin_lim_iters must be in \[1, 1000\]; got -1"),
    "unknown_attribute": ("tweak", lambda: dict(waveform=tf.zeros([1, CLIP]),
                                                **(EDITS | {"attribute": tf.constant("jazz")})),
                          r"unknown attribute: jazz \(this export carries: high, low\)"),
    "dimension_range": ("tweak", lambda: dict(waveform=tf.zeros([1, CLIP]),
                                              **(EDITS | {"dimensions": tf.constant([8])})),
                        r"dimensions must lie in \[0, 8\); got \[8\]"),
    "dimension_values": ("tweak", lambda: dict(waveform=tf.zeros([1, CLIP]), **(EDITS | {
        "dimension_values": tf.constant([1.0, 2.0])})),
                         "dimensions and dimension_values must have the same length; got 1 and 2"),
    "not_wav": ("encode_wav", lambda: dict(wav_bytes=tf.constant([b"just some text"])),
                r"wav_bytes: not a WAV file \(no RIFF/WAVE header\)"),
    "empty_wav_batch": ("encode_wav", lambda: dict(wav_bytes=tf.constant([], tf.string)),
                        "wav_bytes is an empty batch"),
    "wav_rate": ("reconstruct_wav", lambda: dict(wav_bytes=tf.constant([_wav(1.0, 44100)])),
                 r"wav_bytes: a WAV at 44100 Hz; the model takes 22050 Hz"),
    "short_wav": ("encode_wav", lambda: dict(wav_bytes=tf.constant([_wav(0.1, 22050)])),
                  "wav_bytes: a WAV of 2205 samples; the model needs at least 11025"),
    "float_wav": ("encode_wav", lambda: dict(wav_bytes=tf.constant([_wav(1.0, 22050, "FLOAT")])),
                  r"wav_bytes: a WAV of 32-bit samples in format 3 \(1 is PCM, 3 is float\); "
                  "send 16-bit PCM WAV"),
    "truncated_wav": ("encode_wav", lambda: dict(wav_bytes=tf.constant([_wav(1.0, 22050)[:2000]])),
                      r"wav_bytes: a truncated WAV file \(2000 bytes; its header declares "
                      r"44144\)"),
    "extensible_wav": ("reconstruct_wav", lambda: dict(wav_bytes=tf.constant(
        [_wav(1.0, 22050, wav_format="WAVEX")])), r"wav_bytes: a WAVE_FORMAT_EXTENSIBLE WAV"),
    "streamed_wav": ("encode_wav", lambda: dict(wav_bytes=tf.constant([_streamed_wav()])),
                     r"wav_bytes: a streamed WAV \(its header declares no length"),
    "list_before_fmt": ("encode_wav", lambda: dict(wav_bytes=tf.constant([_wav_with_list_first()])),
                        r'wav_bytes: a WAV whose first chunk is \\?"LIST\\?", not \\?"fmt \\?"'),
    "truncated_header": ("encode_wav",
                         lambda: dict(wav_bytes=tf.constant([_wav(1.0, 22050)[:30]])),
                         r"wav_bytes: a truncated WAV file \(30 bytes"),
}


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_bad_request_gets_a_clear_error_from_the_signature(backend, case):
  signature, inputs, message = BAD_REQUESTS[case]
  with pytest.raises(tf.errors.InvalidArgumentError, match=message):
    backend.signatures[signature](**inputs())


def test_signatures_serve_after_bad_requests(backend):
  clip = np.stack([synth_song(1.0, seed=7)])
  for waveform in (np.full_like(clip, np.nan), clip[:, :10]):
    with pytest.raises(export.ExportError) as raised:
      backend.encode(waveform)
    assert str(raised.value).startswith(f"{backend.source}: encode: waveform ")
    assert "\n" not in str(raised.value) and "node" not in str(raised.value)
  _, mu, _ = backend.encode(clip)
  assert mu.shape == (1, backend.config.z_size) and np.all(np.isfinite(mu))
  multichannel = _wav(1.0, 22050, channels=2)
  mono_mu = backend.signatures["encode_wav"](wav_bytes=tf.constant([multichannel]))["mu"]
  assert np.all(np.isfinite(mono_mu.numpy()))


def test_load_export_is_a_backend_like_keras(backend, exported, keras_model):
  assert backend.source == str(exported.version_dir)   # The highest version with a model.
  assert backend.config == keras_model.config
  assert backend.package_version == "0.1.0"
  assert sorted(backend.attributes) == ["high", "low"]
  np.testing.assert_allclose(backend.attributes["low"], keras_model.attributes["low"])
  keras_backend = inference.KerasBackend(keras_model)
  clips = np.stack([synth_song(1.0, seed=8), synth_song(1.0, base_hz=110.0, seed=9)])
  np.testing.assert_allclose(backend.encode(clips)[1], keras_backend.encode(clips)[1], atol=1e-5)
  np.testing.assert_allclose(backend.encode_refined(clips, 3),
                             keras_backend.encode_refined(clips, 3), atol=1e-4)
  z = np.random.default_rng(1).standard_normal([2, keras_model.config.z_size]).astype(np.float32)
  for iterations in (None, 3):
    waveform, log_mel = backend.decode(z, griffin_lim_iters=iterations)
    keras_waveform, keras_log_mel = keras_backend.decode(z, griffin_lim_iters=iterations)
    np.testing.assert_allclose(log_mel, keras_log_mel, atol=1e-5)
    _assert_same_audio(waveform, keras_waveform)


def test_load_export_checks_the_path_and_the_config(backend, exported, tmp_path):
  assert export.version_folder(exported.model_dir) == exported.version_dir
  assert export.version_folder(exported.version_dir) == exported.version_dir
  with pytest.raises(checkpoints.CheckpointError, match="not a SavedModel export"):
    export.load_export(exported.model_dir / "3")
  with pytest.raises(checkpoints.CheckpointError, match=r"/missing: no such folder$"):
    inference.load_backend(saved_model=str(tmp_path / "missing"))
  with pytest.raises(checkpoints.CheckpointError, match="not a SavedModel export"):
    inference.load_backend(saved_model=str(tmp_path))
  other = dataclasses.replace(backend.config, z_size=16, n_mels=64)
  with pytest.raises(checkpoints.CheckpointError, match="in n_mels=40 \\(not 64\\), z_size=8 \\(not 16\\)"):
    export.SavedModelBackend(backend.saved_model, backend.directory, other)
