"""wave_music_vae: a MusicVAE over music audio, one latent vector per clip."""

__version__ = "0.1.0"
