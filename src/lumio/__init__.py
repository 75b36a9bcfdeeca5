"""Lumio channel status."""

__version__ = "0.1.0"
