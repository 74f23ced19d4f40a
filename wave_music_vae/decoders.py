"""MusicVAE's hierarchical decoder, emitting log-mel frames.

z [batch, z_size]
  -> Dense(tanh) -> initial (h, c) of the conductor LSTM
  -> conductor LSTM over num_segments steps (zero inputs, as in MusicVAE)
  -> Dense(tanh) per step: one embedding per segment        [batch, segments, embedding]
  -> per segment: Dense(tanh) -> initial (h, c) of the core LSTM, which runs
     frames_per_segment steps with input [segment embedding, one-hot frame position]
  -> Dense(n_mels) per frame                               [batch, segments * fps, n_mels]
  -> cropped to num_frames                                 [batch, num_frames, n_mels]

The core (lower-level) LSTM is *not* autoregressive: each frame is conditioned on
its segment's embedding and its position, never on the previous frame. For
continuous log-mel frames, the previous frame alone predicts the next one well,
so a teacher-forced decoder learns to copy it and ignores z (the posterior
collapse that MusicVAE's hierarchy exists to fight); without feedback every bit
of the clip must come through z, all segments decode in parallel (segments are
folded into the batch), and there is no train/generate mismatch (exposure bias).
"""

import keras
import tensorflow as tf

_PACKAGE = "wave_music_vae"


@keras.saving.register_keras_serializable(package=_PACKAGE)
class HierarchicalDecoder(keras.layers.Layer):
  """z [batch, z_size] -> model log-mel [batch, num_frames, n_mels].

  Fails fast unless num_segments * frames_per_segment covers num_frames with less
  than one segment to spare (MusicVAE's level_lengths check).
  """

  def __init__(self, num_frames, n_mels, num_segments=16, frames_per_segment=None,
               conductor_lstm_units=256, conductor_embedding_size=128,
               decoder_lstm_units=256, **kwargs):
    super().__init__(**kwargs)
    frames_per_segment = frames_per_segment or -(-num_frames // num_segments)
    covered = num_segments * frames_per_segment
    if not covered >= num_frames > covered - frames_per_segment:
      raise ValueError("num_segments * frames_per_segment must cover num_frames with less "
                       f"than one segment to spare. Received: num_segments={num_segments}, "
                       f"frames_per_segment={frames_per_segment}, num_frames={num_frames}")
    self.num_frames = num_frames
    self.n_mels = n_mels
    self.num_segments = num_segments
    self.frames_per_segment = frames_per_segment
    self.conductor_lstm_units = conductor_lstm_units
    self.conductor_embedding_size = conductor_embedding_size
    self.decoder_lstm_units = decoder_lstm_units
    policy = self.dtype_policy  # Sublayers compute as this layer does (mixed precision).
    self.conductor_init = keras.layers.Dense(2 * conductor_lstm_units, activation="tanh",
                                             name="conductor_init", dtype=policy)
    self.conductor = keras.layers.LSTM(conductor_lstm_units, return_sequences=True,
                                       name="conductor", dtype=policy)
    self.embedding = keras.layers.Dense(conductor_embedding_size, activation="tanh",
                                        name="segment_embedding", dtype=policy)
    self.core_init = keras.layers.Dense(2 * decoder_lstm_units, activation="tanh",
                                        name="core_init", dtype=policy)
    self.core = keras.layers.LSTM(decoder_lstm_units, return_sequences=True, name="core",
                                  dtype=policy)
    self.output_dense = keras.layers.Dense(n_mels, name="frames", dtype=policy)

  def build(self, input_shape):
    batch = input_shape[0]
    self.conductor_init.build(input_shape)
    self.conductor.build((batch, self.num_segments, 1))
    self.embedding.build((batch, self.num_segments, self.conductor_lstm_units))
    self.core_init.build((batch, self.conductor_embedding_size))
    self.core.build((batch, self.frames_per_segment,
                     self.conductor_embedding_size + self.frames_per_segment))
    self.output_dense.build((batch, self.frames_per_segment, self.decoder_lstm_units))

  def call(self, z, training=False):
    batch = tf.shape(z)[0]
    h, c = tf.split(self.conductor_init(z), 2, axis=-1)
    conductor_inputs = tf.zeros([batch, self.num_segments, 1], dtype=z.dtype)
    conductor_out = self.conductor(conductor_inputs, initial_state=[h, c], training=training)
    embeddings = self.embedding(conductor_out)                 # [batch, segments, emb]
    flat = tf.reshape(embeddings, [-1, self.conductor_embedding_size])  # [batch*segments, emb]
    core_h, core_c = tf.split(self.core_init(flat), 2, axis=-1)
    positions = tf.eye(self.frames_per_segment, dtype=flat.dtype)[tf.newaxis]
    positions = tf.tile(positions, [tf.shape(flat)[0], 1, 1])  # [batch*segments, fps, fps]
    repeated = tf.tile(flat[:, tf.newaxis], [1, self.frames_per_segment, 1])
    core_inputs = tf.concat([repeated, positions], axis=-1)
    core_out = self.core(core_inputs, initial_state=[core_h, core_c], training=training)
    frames = self.output_dense(core_out)                       # [batch*segments, fps, n_mels]
    frames = tf.reshape(frames, [batch, self.num_segments * self.frames_per_segment, self.n_mels])
    return frames[:, :self.num_frames]

  def compute_output_shape(self, input_shape):
    return (input_shape[0], self.num_frames, self.n_mels)

  def get_config(self):
    return {**super().get_config(), "num_frames": self.num_frames, "n_mels": self.n_mels,
            "num_segments": self.num_segments, "frames_per_segment": self.frames_per_segment,
            "conductor_lstm_units": self.conductor_lstm_units,
            "conductor_embedding_size": self.conductor_embedding_size,
            "decoder_lstm_units": self.decoder_lstm_units}
