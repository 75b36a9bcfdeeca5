"""Linking a Spotify account: OAuth, tokens, their encryption at rest."""
