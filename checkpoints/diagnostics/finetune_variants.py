r"""Which change to training helps on held-out music? Short fine-tunes of a checkpoint, side by side.

Usage:
  python checkpoints/diagnostics/finetune_variants.py MUSIC_DIR OUT_DIR [--minutes=40] \
      [--learning_rate=1e-4] [--encoder_only] [--mix=0.5] [--gain_db=6] \
      [--spectral_convergence_weight=1000] [--edge_crop_fraction=0.2] [--threads=2]

Starts from the shipped checkpoint (Adam's moments fresh, a constant learning rate) and trains
for --minutes on the training split's random crops, with one or more variants:
  --encoder_only      the decoder frozen: only the encoder learns (amortised refinement)
  --mix, --gain_db    augmentation: with probability `mix` another clip of the batch is added at
                      a random gain in [0.3, 1]; every clip is scaled by a gain in +-gain_db dB
  --spectral_convergence_weight
                      adds w * ||A - A'||_F / ||A||_F on mel amplitudes A = 10^(dB/20) to the
                      loss: the linear-magnitude term of DDSP's spectral loss, which weighs the
                      loud bins that the MR-STFT distance's spectral convergence is made of
  --edge_crop_fraction
                      as the config field: a share of crops are a song's first or last clip
Every --eval_every steps it prints the log-mel L1 (dB, decoder output against the clip's log-mel)
of decode(mu) on the evaluator's 64 held-out clips and on 64 training clips. At the end it saves
OUT_DIR/config.json and OUT_DIR/model.weights.h5, a folder that
`wave_music_vae_evaluate --checkpoint_file=OUT_DIR --refine_steps=100` scores like any other.
The training loop is a plain one (no checkpoints, no resume): it is an experiment, not a run.
"""
import argparse
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from wave_music_vae import checkpoints, data, evaluation, inference, losses

parser = argparse.ArgumentParser()
parser.add_argument("music")
parser.add_argument("out_dir")
parser.add_argument("--minutes", type=float, default=40.0)
parser.add_argument("--learning_rate", type=float, default=1e-4)
parser.add_argument("--encoder_only", action="store_true")
parser.add_argument("--mix", type=float, default=0.0)
parser.add_argument("--gain_db", type=float, default=0.0)
parser.add_argument("--spectral_convergence_weight", type=float, default=0.0)
parser.add_argument("--edge_crop_fraction", type=float, default=0.0)
parser.add_argument("--eval_every", type=int, default=1000)
parser.add_argument("--threads", type=int, default=2)
args = parser.parse_args()
BETA_AT_MAX_STEP = 10**6  # A step long past the beta ramp: beta = max_beta, as at the checkpoint.
tf.config.threading.set_intra_op_parallelism_threads(args.threads)
tf.config.threading.set_inter_op_parallelism_threads(args.threads)

backend = inference.load_backend()
config, model = backend.config, backend.model
source = data.DatasetSource(args.music, "folder")
held_out = evaluation.held_out_clips(source, config, 64)
training_clips = evaluation.load_clips(source, config, "train", 64)


@tf.function
def mu_error_db(clips):
  log_mel = model.log_mel(clips)
  mu, _ = model.encoder(log_mel, training=False)
  return tf.reduce_mean(tf.abs(model.decoder(mu) - log_mel)) * config.db_scale


def proxies():
  return [float(np.mean([mu_error_db(tf.constant(c.audio[i:i + 16])).numpy()
                         for i in range(0, len(c), 16)])) for c in (held_out, training_clips)]


def crops(audio, label):
  del label
  return data.random_crops(audio, config.clip_samples, config.clips_per_file,
                           args.edge_crop_fraction)


def augment(clips):
  batch = tf.shape(clips)[0]
  if args.gain_db > 0:
    clips *= tf.pow(10.0, tf.random.uniform([batch, 1], -args.gain_db, args.gain_db) / 20.0)
  if args.mix > 0:
    other = tf.roll(clips, 1, axis=0) * tf.random.uniform([batch, 1], 0.3, 1.0)
    clips += tf.where(tf.random.uniform([batch, 1]) < args.mix, other, 0.0)
  return clips


files = source.files("train", config)
dataset = (data.decoded_songs(files, config.sample_rate_hz, source.skipped, True, config.seed)
           .cache().shuffle(len(files)).repeat().map(crops, num_parallel_calls=2).unbatch()
           .shuffle(config.shuffle_buffer_clips)
           .batch(config.batch_size, drop_remainder=True).map(augment).prefetch(2))
variables = model.encoder.trainable_variables if args.encoder_only else model.trainable_variables
optimizer = keras.optimizers.Adam(args.learning_rate, global_clipnorm=config.clip_norm)
optimizer.build(variables)


def mel_amplitude(model_log_mel):
  return tf.pow(10.0, (tf.cast(model_log_mel, tf.float32) * config.db_scale
                       + config.db_center) / 20.0)


@tf.function
def train_step(clips):
  with tf.GradientTape() as tape:
    outputs = model(clips, training=True)
    terms = losses.vae_losses(outputs["log_mel"], outputs["reconstruction"], outputs["mu"],
                              outputs["sigma"], BETA_AT_MAX_STEP, config)
    loss = terms["loss"]
    if args.spectral_convergence_weight > 0:
      target, estimate = mel_amplitude(outputs["log_mel"]), mel_amplitude(outputs["reconstruction"])
      convergence = (tf.norm(target - estimate, axis=[1, 2])
                     / (tf.norm(target, axis=[1, 2]) + 1e-6))
      loss += args.spectral_convergence_weight * tf.reduce_mean(convergence)
  gradients = tape.gradient(loss, variables)
  optimizer.apply_gradients(zip(gradients, variables))
  return terms["log_mel_l1_db"]


held_db, train_db = proxies()
print(f"step 0: held-out {held_db:.3f} dB, training {train_db:.3f} dB", flush=True)
started, step, recent = time.time(), 0, []
for clips in dataset:
  recent.append(float(train_step(clips)))
  step += 1
  elapsed = time.time() - started
  if step % args.eval_every == 0 or elapsed > 60 * args.minutes:
    held_db, train_db = proxies()
    print(f"step {step} ({elapsed:.0f} s): held-out {held_db:.3f} dB, training {train_db:.3f} dB;"
          f" training loss {np.mean(recent):.3f} dB", flush=True)
    recent = []
    if elapsed > 60 * args.minutes:
      break
out = Path(args.out_dir)
out.mkdir(parents=True, exist_ok=True)
(out / "config.json").write_text(config.to_json())
model.save_weights(str(out / checkpoints.WEIGHTS_FILE))
print(f"wrote {out}")
