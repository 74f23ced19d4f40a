"""Encoder or decoder? Fit z itself to each held-out clip and see how low the decoder's error goes.

Usage: python checkpoints/diagnostics/optimise_z.py MUSIC_DIR [CHECKPOINT] [STEPS] [LEARNING_RATE]
Starts from the encoder's mu for the evaluator's 64 held-out clips and runs Adam on z to
minimise the log-mel L1 of decode(z); prints the error (dB) and the mean norm of z as it goes,
and the multi-resolution STFT distance of the decoded audio (Griffin-Lim, as the evaluator
scores it) at the start, after 50 and 100 steps and at the end.
"""
import sys

import numpy as np
import tensorflow as tf

from wave_music_vae import data, evaluation, inference, metrics

music = sys.argv[1]
backend = inference.load_backend(checkpoint_file=sys.argv[2] if len(sys.argv) > 2 else None)
steps = int(sys.argv[3]) if len(sys.argv) > 3 else 400
learning_rate = float(sys.argv[4]) if len(sys.argv) > 4 else 0.05
config, model = backend.config, backend.model
held_out = evaluation.held_out_clips(data.DatasetSource(music, "folder"), config, 64)
target = model.log_mel(tf.constant(held_out.audio))
_, mu, _ = model.encode(tf.constant(held_out.audio))
z = tf.Variable(mu)
optimizer = tf.keras.optimizers.Adam(learning_rate)


@tf.function
def step():
  with tf.GradientTape() as tape:
    error = tf.reduce_mean(tf.abs(model.decoder(z) - target))
  optimizer.apply_gradients(zip(tape.gradient(error, [z]), [z]))
  return error


def mr_stft(codes):
  audio = np.concatenate([backend.decode(codes[i:i + 16])[0] for i in range(0, len(codes), 16)])
  return np.mean(metrics.multi_resolution_stft_distance(audio, held_out.audio))


print(f"mu: norm {np.linalg.norm(mu, axis=1).mean():.1f}, MR-STFT {mr_stft(mu.numpy()):.3f}")
for i in range(1, steps + 1):
  error = step()
  if i % 50 == 0 or i == steps:
    scored = f", MR-STFT {mr_stft(z.numpy()):.3f}" if i in (50, 100, steps) else ""
    print(f"step {i:4d}: {float(error) * config.db_scale:.2f} dB, "
          f"norm of z {np.linalg.norm(z.numpy(), axis=1).mean():.1f}{scored}")
