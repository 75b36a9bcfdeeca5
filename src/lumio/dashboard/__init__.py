"""The dashboard served at /: a static page and small vanilla JS over the REST API and /v1/events."""
