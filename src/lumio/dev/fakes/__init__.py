"""Local fake platform servers: strict, stateful, faithful to PLATFORM_APIS.md, run on loopback."""
