#!/usr/bin/env bash
# How checkpoints/soundtracks was made, end to end (see checkpoints/README.md for the figures).
# Usage: checkpoints/make_soundtracks.sh [MUSIC_DIR] [RUN_DIR] [TRAINING_HOURS]
set -euo pipefail
MUSIC=${1:-$HOME/music}
RUN=${2:-runs/soundtracks}
HOURS=${3:-unknown}
cd "$(dirname "$0")/.."
[ -d "$MUSIC/wesnoth" ] || ../shared/get_music.sh "$MUSIC"
# Resumable: rerun to continue from the newest checkpoint. The shipped weights came from five
# runs: 9,025 steps from scratch, then new run directories warm-started from the previous
# weights (WARM_START=...), whose optimizer moments started afresh; the third and fourth also
# slowed the learning-rate decay (HPARAMS=decay_rate=0.99993, then 0.999966) to raise the rate
# again; the fifth trained with edge_crop_fraction 0.2 (now in configs/soundtracks.json); the sixth
# (HPARAMS=decay_rate=0.9999864 NUM_STEPS=140000) read all of each long track. Each run was stopped with SIGTERM (which writes a checkpoint); the steps after training
# were then run by hand with the same arguments.
wave_music_vae_train --config=soundtracks --run_dir="$RUN" --examples_path="$MUSIC" \
    --num_steps="${NUM_STEPS:-60000}" --cache_decoded_audio \
    ${WARM_START:+--warm_start_from="$WARM_START"} ${HPARAMS:+--hparams="$HPARAMS"}
wave_music_vae_attributes --run_dir="$RUN" --examples_path="$MUSIC" --overwrite
python -c "import sys; from wave_music_vae import checkpoints; print(checkpoints.package_run(
    sys.argv[1], 'checkpoints/soundtracks', training_hours=sys.argv[2],
    hardware='2-core x86-64 CPU shared with other jobs, no GPU',
    data='four Debian game soundtracks (asc, drascula, planetblupi, wesnoth), album as label'))" \
    "$RUN" "$HOURS"
wave_music_vae_evaluate --checkpoint_file=checkpoints/soundtracks --examples_path="$MUSIC" \
    --max_clips=64 --refine_steps=100 --output_json=checkpoints/soundtracks/evaluation.json --overwrite
