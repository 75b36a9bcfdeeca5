"""Password hashing with Argon2id (argon2-cffi's defaults follow RFC 9106's recommendation)."""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
# Verified when the email is unknown, so that a wrong email costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("lumio-dummy-password")

MIN_LENGTH = 8
MAX_LENGTH = 1024


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _verify(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


async def verify_password(
    password_hash: str | None, password: str, executor: Executor | None = None
) -> bool:
    """Verify off the event loop: Argon2 takes tens of milliseconds of CPU (and releases the
    GIL). The API passes its bounded hashing pool, so a flood of sign-ins cannot take every
    core from the reads."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(executor, _verify, password_hash, password)
