"""Who is asking: sessions, API keys, passwords and the principal of a request."""
