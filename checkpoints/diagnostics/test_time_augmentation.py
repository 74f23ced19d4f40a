"""Does averaging the encoder's mean over altered copies of a clip reconstruct it better?

Usage: python checkpoints/diagnostics/test_time_augmentation.py MUSIC_DIR [CHECKPOINT]
On the evaluator's 64 held-out clips, prints the log-mel L1 (dB, the decoder's output against
the clip's own log-mel, no Griffin-Lim) of decode(mu), then of decode(the mean of mu over the
clip and copies of it shifted in time or changed in gain), with the paired difference and its
standard error. Test-time augmentation lowers the variance of a predictor on unseen inputs,
which is where the encoder trails (`amortisation_gap`).
"""
import sys

import numpy as np
import tensorflow as tf

from wave_music_vae import data, evaluation, inference

BATCH = 16
music = sys.argv[1]
backend = inference.load_backend(checkpoint_file=sys.argv[2] if len(sys.argv) > 2 else None)
config, model = backend.config, backend.model
clips = evaluation.held_out_clips(data.DatasetSource(music, "folder"), config, 64).audio


@tf.function
def encoder_mean(waveforms):
  return model.encode(waveforms)[1]


@tf.function
def error_db(z, waveforms):
  return tf.reduce_mean(tf.abs(model.decode(z) - model.log_mel(waveforms)),
                        axis=[1, 2]) * config.db_scale


def in_batches(function, *arrays):
  return np.concatenate([function(*(tf.constant(a[i:i + BATCH], tf.float32) for a in arrays))
                         .numpy() for i in range(0, len(arrays[0]), BATCH)])


mu = in_batches(encoder_mean, clips)
plain = in_batches(error_db, mu, clips)
print(f"decode(mu) {plain.mean():.3f} dB, |mu| {np.linalg.norm(mu, axis=1).mean():.2f}")
copies_by_name = {
    "shifted 64, 128, 192 samples (within one hop)":
        [np.roll(clips, s, axis=1) for s in (64, 128, 192)],
    "shifted -256, -128, 128, 256 samples": [np.roll(clips, s, axis=1) for s in (-256, -128, 128, 256)],
    "shifted -2048, -1024, 1024, 2048 samples":
        [np.roll(clips, s, axis=1) for s in (-2048, -1024, 1024, 2048)],
    "gain -1, +1 dB": [clips * 10 ** (g / 20) for g in (-1, 1)],
    "gain -3, +3 dB": [clips * 10 ** (g / 20) for g in (-3, 3)],
}
for name, copies in copies_by_name.items():
  averaged = np.mean([mu] + [in_batches(encoder_mean, c) for c in copies], axis=0)
  difference = in_batches(error_db, averaged, clips) - plain
  print(f"{name:45s} {plain.mean() + difference.mean():.3f} dB, paired difference "
        f"{difference.mean():+.3f} (standard error {difference.std() / np.sqrt(len(difference)):.3f})")
