"""Is the shipped model over-fitting? Log-mel L1 (dB) of decode(mu) on held-out and training clips.

Usage: python checkpoints/diagnostics/held_out_vs_training.py MUSIC_DIR [CHECKPOINT]
Prints the model's and PCA-64's error on the evaluator's held-out clips and on 256 training
clips taken the same way, then, on every 7th training track, the model's error on random
crops (as training draws them), on the evenly spaced crops inside the track and on its first
and last clip.
"""
import sys

import numpy as np
import tensorflow as tf

from wave_music_vae import audio_io, data, evaluation, inference, metrics

music = sys.argv[1]
backend = inference.load_backend(checkpoint_file=sys.argv[2] if len(sys.argv) > 2 else None)
config, model = backend.config, backend.model
source = data.DatasetSource(music, "folder")
inverter = evaluation.MelInverter(config)


def log_mel_db(audio):
  return np.concatenate([inverter.log_mel_db(audio[i:i + 16])[0] for i in range(0, len(audio), 16)])


def decoded_db(audio):
  """decode(mu) as log-mel dB, without Griffin-Lim (only the mel is compared)."""
  model_log_mel = [model.decode(backend.encode(audio[i:i + 16])[1]).numpy()
                   for i in range(0, len(audio), 16)]
  return np.concatenate(model_log_mel) * config.db_scale + config.db_center


held_out = evaluation.held_out_clips(source, config, 64)
train = evaluation.load_clips(source, config, "train", 256)
pca = metrics.fit_pca(log_mel_db(train.audio), config.z_size, 0)
for name, clips in (("held-out", held_out), ("training", train)):
  target = log_mel_db(clips.audio)
  print(f"{name:9s} clips: model {np.mean(np.abs(decoded_db(clips.audio) - target)):.2f} dB, "
        f"PCA-64 {np.mean(np.abs(metrics.pca_reconstruct(pca, target) - target)):.2f} dB")


def errors(clips):
  log_mel = model.log_mel(clips)
  mu, _ = model.encoder(log_mel)
  return tf.reduce_mean(tf.abs(model.decoder(mu) - log_mel), axis=[1, 2]).numpy() * config.db_scale


random, inner, ends = [], [], []
for song in source.files("train", config)[::7]:
  audio = tf.constant(audio_io.read_audio(song.path, config.sample_rate_hz))
  random.append(errors(data.random_crops(audio, config.clip_samples, 8)))
  fixed = errors(data.fixed_crops(audio, config.clip_samples, 8))
  inner.append(fixed[1:-1])
  ends.append(fixed[[0, -1]])
print(f"{len(random)} training tracks: random crops {np.concatenate(random).mean():.2f} dB, "
      f"inner fixed crops {np.concatenate(inner).mean():.2f} dB, "
      f"first and last clip {np.concatenate(ends).mean():.2f} dB")
