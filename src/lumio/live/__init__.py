"""Live updates for the dashboard: an account's status events as Server-Sent Events (DESIGN §5)."""
