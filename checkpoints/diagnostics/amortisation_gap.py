"""Where is the encoder's shortfall: on all music, or only on music it never saw?

Usage: python checkpoints/diagnostics/amortisation_gap.py MUSIC_DIR [CHECKPOINT] [STEPS]
On the evaluator's 64 held-out clips and on 64 training clips taken the same way (fixed crops,
evenly spaced through each track), prints the log-mel L1 (dB, the decoder's output against the
clip's own log-mel, no Griffin-Lim) of decode(mu) and of decode(mu refined by STEPS steps,
default 100; `refinement.refine_encoding`), and the mean norm of both codes. The difference
between the two errors is the encoder's amortisation gap on each split; the difference between
the splits' refined errors is what the decoder loses on unseen music.
"""
import sys

import numpy as np
import tensorflow as tf

from wave_music_vae import data, evaluation, inference, refinement

music = sys.argv[1]
backend = inference.load_backend(checkpoint_file=sys.argv[2] if len(sys.argv) > 2 else None)
steps = int(sys.argv[3]) if len(sys.argv) > 3 else 100
config, model = backend.config, backend.model
source = data.DatasetSource(music, "folder")


@tf.function
def errors_and_norms(clips):
  refined, mu = refinement.refine_encoding(model, clips, steps)
  target = model.log_mel(clips)

  def error_db(z):
    return tf.reduce_mean(tf.abs(model.decode(z) - target), axis=[1, 2]) * config.db_scale
  return error_db(mu), error_db(refined), tf.norm(mu, axis=-1), tf.norm(refined, axis=-1)


for name, clips in (("held-out", evaluation.held_out_clips(source, config, 64)),
                    ("training", evaluation.load_clips(source, config, "train", 64))):
  parts = [errors_and_norms(tf.constant(clips.audio[i:i + 16]))
           for i in range(0, len(clips), 16)]
  mu_db, refined_db, mu_norm, refined_norm = (np.concatenate([p[k].numpy() for p in parts])
                                              for k in range(4))
  print(f"{name:9s} clips: decode(mu) {mu_db.mean():.3f} dB, refined ({steps} steps) "
        f"{refined_db.mean():.3f} dB; |mu| {mu_norm.mean():.2f}, |refined| {refined_norm.mean():.2f}")
