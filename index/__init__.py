"""Build side: load articles, normalise, dedupe, chunk, embed, write to Chroma + keyword index."""

from index.config import Settings, quiet_offline_environment

quiet_offline_environment()

__all__ = ["Settings", "quiet_offline_environment"]
