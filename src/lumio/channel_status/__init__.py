"""The channel_status table: one row per (account, platform), the source of truth for live status."""
