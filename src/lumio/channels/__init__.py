"""Linked channels: which channel on which platform an account links, and the detector's schedule."""
