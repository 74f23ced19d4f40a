"""The evaluator on other held-out clips: the middle clip of each of k equal parts of a track.

Usage: python checkpoints/diagnostics/middle_crops_evaluation.py MUSIC_DIR CHECKPOINT OUTPUT_JSON
`wave_music_vae_evaluate` takes each track's clips evenly spaced from its first sample to its
last, so intros, fades and silences weigh in; this replaces `data.fixed_crops` for one run
(held-out and training clips alike) to show how much the figures depend on that choice.
"""
import json
import sys

import tensorflow as tf

from wave_music_vae import data, evaluation, inference


def middle_crops(audio, clip_samples, count):
  """[n] -> [k, clip_samples]: the middle clip of each of k = min(count, n // clip) parts."""
  audio = data._fit(audio, clip_samples)  # pylint: disable=protected-access
  n = tf.cast(tf.shape(audio)[0], tf.int64)
  k = tf.clip_by_value(n // clip_samples, 1, count)
  starts = tf.range(k) * n // k + (n // k - clip_samples) // 2
  return tf.map_fn(lambda s: audio[s:s + clip_samples], tf.cast(starts, tf.int32),
                   fn_output_signature=tf.float32)


data.fixed_crops = middle_crops
music, checkpoint, output = sys.argv[1:4]
backend = inference.load_backend(checkpoint_file=checkpoint)
source = data.DatasetSource(music, "folder")
results = evaluation.evaluate(backend, evaluation.held_out_clips(source, backend.config, 64),
                              evaluation.load_clips(source, backend.config, "train", 512))
print(evaluation.format_table(results))
with open(output, "w") as f:
  json.dump(results, f, indent=1)
