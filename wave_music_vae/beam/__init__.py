"""Optional Apache Beam pipelines (the `[beam]` extra: `pip install -e '.[beam]'`).

This package imports nothing itself; `wave_music_vae.beam.prepare` is the only
module of wave_music_vae that imports apache_beam, so the rest of the package
works without it.
"""
