"""ansible-proxy: keep every service on every host at its centrally published version."""

__version__ = "0.1.0"
