"""Configs load, derive from a base, validate overrides and list valid choices on error."""

import json

import pytest

from wave_music_vae import config as config_lib


@pytest.mark.parametrize("name", config_lib.available_configs())
def test_every_shipped_config_loads_and_round_trips(name):
  config = config_lib.load_config(name)
  assert config.name == name
  assert config_lib.Config.from_dict(json.loads(config.to_json())) == config


def test_required_names_exist():
  assert {"gtzan", "fma_small", "folder", "tiny"} <= set(config_lib.available_configs())


def _write_configs(folder, **files):
  for name, values in files.items():
    (folder / f"{name}.json").write_text(json.dumps(values))


def test_base_chain_inherits_and_overrides(tmp_path):
  """Three files, each overriding its base: every level's non-default values arrive."""
  _write_configs(tmp_path, grand={"z_size": 7, "n_mels": 40, "batch_size": 3},
                 parent={"base": "grand", "n_mels": 32, "max_beta": 0.5},
                 child={"base": "parent", "batch_size": 5})
  child = config_lib.load_config("child", directory=tmp_path)
  assert (child.name, child.z_size, child.n_mels, child.max_beta, child.batch_size) == (
      "child", 7, 32, 0.5, 5)
  defaults = config_lib.Config()
  assert (defaults.z_size, defaults.n_mels, defaults.max_beta, defaults.batch_size) != (
      7, 32, 0.5, 5)


def test_a_bases_name_and_old_field_names_resolve_per_file(tmp_path):
  """A config derived from a run's saved config.json is named after itself, and its
  `free_bits` (the old name) overrides the base's `free_nats`."""
  saved = config_lib.load_config("tiny", {"free_nats": "10"})
  config_lib.save_config(saved, tmp_path / "config.json")
  _write_configs(tmp_path, mine={"base": str(tmp_path / "config.json"), "free_bits": 3.0})
  mine = config_lib.load_config("mine", directory=tmp_path)
  assert (mine.name, mine.free_nats, mine.z_size) == ("mine", 3.0, saved.z_size)


@pytest.mark.parametrize("content,message", [
    ('"tiny"', "expected a JSON object of hparams, got a JSON str"),
    ("[1, 2]", "expected a JSON object of hparams, got a JSON list"),
    ('{"base": 5}', "'base' must name a config, got 5"),
    ('{"base": ""}', "'base' must name a config, got ''"),
    ('{"z_size": ', "cannot read config file"),
])
def test_malformed_config_file_is_a_config_error_naming_it(tmp_path, content, message):
  path = tmp_path / "bad.json"
  path.write_text(content)
  with pytest.raises(config_lib.ConfigError, match=message) as error:
    config_lib.load_config(str(path))
  assert str(path) in str(error.value)


@pytest.mark.parametrize("name,value", [
    ("conv_channels", [8.5, 16]), ("conv_channels", "8.5:16"), ("conv_channels", [True, 8]),
    ("z_size", 3.7), ("z_size", True)])
def test_fractional_or_boolean_counts_are_refused_not_truncated(name, value):
  with pytest.raises(config_lib.ConfigError, match=f"bad value .* for hparam '{name}'"):
    config_lib.load_config("tiny", {name: value})


def test_hparams_override_types():
  config = config_lib.load_config("tiny", config_lib.parse_hparams(
      "batch_size=8, z_size=16,learning_rate=1e-4,conv_channels=4:8"))
  assert (config.batch_size, config.z_size, config.learning_rate) == (8, 16, 1e-4)
  assert config.conv_channels == (4, 8)


def test_unknown_config_lists_valid_ones():
  with pytest.raises(config_lib.ConfigError, match="valid configs: .*gtzan.*tiny"):
    config_lib.load_config("nope")


def test_unknown_hparam_lists_valid_names():
  with pytest.raises(config_lib.ConfigError, match="unknown hparam.*zsize.*valid names:.*z_size"):
    config_lib.load_config("tiny", {"zsize": "3"})


@pytest.mark.parametrize("item", ["batch_size=eight", "batch_size=2.5", "conv_channels=a:b",
                                  "batch_size=inf"])
def test_bad_value_names_hparam_and_type(item):
  with pytest.raises(config_lib.ConfigError, match="bad value .* for hparam"):
    config_lib.load_config("tiny", config_lib.parse_hparams(item))


def test_invalid_combination_is_rejected():
  with pytest.raises(config_lib.ConfigError, match="data_layout='mp3s'.*valid: gtzan"):
    config_lib.load_config("tiny", {"data_layout": "mp3s"})
  with pytest.raises(config_lib.ConfigError, match="mel_fmax_hz"):
    config_lib.load_config("tiny", {"mel_fmax_hz": "20000"})


@pytest.mark.parametrize("name, value, message", [
    ("hop_length", "0", r"hop_length=0 \(must be in \[1, n_fft\]\)"),
    ("clips_per_file", "0", r"clips_per_file=0 \(must be positive\)"),
    ("summary_every_steps", "0", r"summary_every_steps=0 \(must be positive\)"),
    ("checkpoint_every_steps", "-5", r"checkpoint_every_steps=-5 \(must be positive\)"),
    ("shuffle_buffer_clips", "0", r"shuffle_buffer_clips=0 \(must be positive\)"),
    ("free_nats", "-1", r"free_nats=-1.0 \(must not be negative\)"),
    ("decay_rate", "1.5", r"decay_rate=1.5 \(must be in \(0, 1\]\)"),
    ("sample_rate_hz", "0", r"sample_rate_hz=0 \(must be positive\)"),
    ("db_scale", "0", r"db_scale=0.0 \(must be positive\)"),
    ("mel_fmin_hz", "11025", r"mel_fmin_hz=11025.0 \(must be in \[0, mel_fmax_hz=11025.0\)\)"),
    ("split_method", "random", r"split_method='random' \(valid: hash, official\)"),
])
def test_out_of_range_value_is_a_config_error_naming_it(name, value, message):
  """Caught when the config is made, not as a ZeroDivisionError or hang later in training."""
  with pytest.raises(config_lib.ConfigError, match=message):
    config_lib.load_config("tiny", {name: value})


@pytest.mark.parametrize("name", ["learning_rate", "free_nats", "clip_seconds"])
def test_non_finite_value_is_a_config_error(name):
  with pytest.raises(config_lib.ConfigError, match=f"{name}=nan \\(must be finite\\)"):
    config_lib.load_config("tiny", {name: "nan"})


def test_config_saved_before_the_free_nats_rename_loads(tmp_path):
  saved = json.loads(config_lib.load_config("tiny").to_json())
  saved["free_bits"] = saved.pop("free_nats")
  path = tmp_path / "config.json"
  path.write_text(json.dumps(saved))
  assert config_lib.load_config(str(path)) == config_lib.load_config("tiny")


def test_clip_geometry_of_the_gtzan_and_tiny_configs():
  """4 s at 22050 Hz is 88200 samples, 344 hops of 256 and 345 centred frames; 1 s is 87."""
  gtzan = config_lib.load_config("gtzan")
  assert (gtzan.clip_samples, gtzan.num_frames, gtzan.frames_per_segment) == (88200, 345, 22)
  tiny = config_lib.load_config("tiny")
  assert (tiny.clip_samples, tiny.num_frames, tiny.frames_per_segment) == (22050, 87, 22)


def test_malformed_hparams_item():
  with pytest.raises(config_lib.ConfigError, match="expected name=value"):
    config_lib.parse_hparams("batch_size")


def test_save_then_load_from_path(tmp_path):
  config = config_lib.load_config("tiny", {"z_size": "5"})
  config_lib.save_config(config, tmp_path / "config.json")
  assert config_lib.load_config(str(tmp_path / "config.json")) == config
