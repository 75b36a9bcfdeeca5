"""Random secrets and their hashes. Only hashes are stored.

Session tokens and API keys are 256-bit random values, so a fast hash (SHA-256) is enough to
store them; passwords are low-entropy and use Argon2id (``passwords.py``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

API_KEY_PREFIX = "lumio_"


def new_session_token() -> str:
    return secrets.token_urlsafe(32)


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def csrf_token_for(session_token: str) -> str:
    """The CSRF token of a session: derived from the HttpOnly cookie, which a forger cannot read."""
    return hashlib.sha256(b"lumio-csrf:" + session_token.encode()).hexdigest()


def csrf_matches(session_token: str, sent: str | None) -> bool:
    return sent is not None and hmac.compare_digest(csrf_token_for(session_token), sent)
