"""The dev wing: local fakes of the platforms and Spotify, the simulator, the demo seeding and `lumio dev`.

Nothing outside this package imports it (the CLI's `lumio dev` command loads it lazily)."""
