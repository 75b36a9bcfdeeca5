"""Secrets at rest (Spotify tokens, webhook signing secrets): AES-256-GCM (``cryptography``), each
bound to its owner and purpose.

A ciphertext is ``version (1 byte) | key id (4) | nonce (12) | ciphertext + tag``. The key id
(the first bytes of the key's SHA-256) lets earlier keys keep decrypting after a rotation; the
associated data (account id and "access"/"refresh"; a webhook endpoint's id) stops a stored token from being copied onto
another account or swapped with the other token of the same account.

Where the key comes from (``key_for``): ``LUMIO_SPOTIFY_TOKEN_KEY``, else the file
``LUMIO_SPOTIFY_TOKEN_KEY_FILE`` names, else ``{data_dir}/spotify-token.key`` when it exists.
Only on embedded servers (a first run, `lumio dev`) is that file generated when no key is set;
against a configured database the worker refuses to start without a key and linking answers
503, so that tokens are never encrypted with a key nobody chose (and lose it with the machine).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from lumio.kit.errors import Unavailable
from lumio.kit.settings import Settings

log = logging.getLogger(__name__)

VERSION = b"\x01"
NONCE_BYTES = 12
KEY_ID_BYTES = 4
LOCAL_KEY_FILE = "spotify-token.key"

MISSING_KEY = (
    "no key to encrypt Spotify tokens: set LUMIO_SPOTIFY_TOKEN_KEY (32 random bytes in base64url)"
    " or LUMIO_SPOTIFY_TOKEN_KEY_FILE"
)


class MissingTokenKey(Unavailable):
    pass


class TokenUndecryptable(Exception):
    """No configured key opens this token (the key was rotated away, or the data is damaged)."""


def decode_key(encoded: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(encoded.strip().encode())
    except (ValueError, binascii.Error) as exc:
        raise MissingTokenKey("the Spotify token key is not base64url") from exc
    if len(key) != 32:
        raise MissingTokenKey("the Spotify token key must be 32 bytes")
    return key


def new_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def _key_id(key: bytes) -> bytes:
    return hashlib.sha256(key).digest()[:KEY_ID_BYTES]


def token_context(account_id: UUID, purpose: str) -> bytes:
    return b"lumio-spotify:" + account_id.bytes + b":" + purpose.encode()


def webhook_secret_context(endpoint_id: UUID) -> bytes:
    return b"lumio-webhook:" + endpoint_id.bytes


class TokenCipher:
    def __init__(self, key: bytes, old_keys: Sequence[bytes] = ()) -> None:
        self._current = (_key_id(key), AESGCM(key))
        self._by_id = {_key_id(k): AESGCM(k) for k in (*old_keys, key)}

    def encrypt(self, plaintext: str, context: bytes) -> bytes:
        key_id, aead = self._current
        nonce = os.urandom(NONCE_BYTES)
        return VERSION + key_id + nonce + aead.encrypt(nonce, plaintext.encode(), context)

    def decrypt(self, blob: bytes, context: bytes) -> str:
        header = len(VERSION) + KEY_ID_BYTES
        if blob[:1] != VERSION or len(blob) < header + NONCE_BYTES:
            raise TokenUndecryptable("not a Lumio token ciphertext")
        aead = self._by_id.get(blob[1:header])
        if aead is None:
            raise TokenUndecryptable("encrypted with a key that is no longer configured")
        nonce = blob[header : header + NONCE_BYTES]
        try:
            return aead.decrypt(nonce, blob[header + NONCE_BYTES :], context).decode()
        except InvalidTag as exc:
            raise TokenUndecryptable("the token does not authenticate") from exc

    def encrypt_pair(self, account_id: UUID, access: str, refresh: str) -> tuple[bytes, bytes]:
        return (
            self.encrypt(access, token_context(account_id, "access")),
            self.encrypt(refresh, token_context(account_id, "refresh")),
        )


def key_for(settings: Settings) -> str | None:
    """The configured key (inline or from its file), else the key an embedded run generated
    in the data folder (so `lumio api` finds the key `lumio spotify-worker` made), or None."""
    if settings.spotify.token_key:
        return settings.spotify.token_key
    path = settings.spotify.token_key_file
    if path is None and (settings.data_dir / LOCAL_KEY_FILE).exists():
        path = settings.data_dir / LOCAL_KEY_FILE
    if path is None:
        return None
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise MissingTokenKey(
            f"cannot read the Spotify token key file {path}: {exc.strerror}"
        ) from exc


def cipher_for(settings: Settings) -> TokenCipher:
    """The cipher of the configured key; raises MissingTokenKey (503) when there is none."""
    encoded = key_for(settings)
    if encoded is None:
        raise MissingTokenKey(MISSING_KEY)
    old = [decode_key(k) for k in settings.spotify.token_old_keys]
    return TokenCipher(decode_key(encoded), old)


def local_key(data_dir: Path) -> Path:
    """The generated key of an embedded installation, created (owner-only) on first use."""
    path = data_dir / LOCAL_KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(new_key() + "\n")
        log.warning("generated a Spotify token key for this embedded installation in %s", path)
    return path


def with_local_key(settings: Settings, *, embedded: bool) -> Settings:
    """On embedded servers without a configured key: use (or create) the installation's key file.

    ``embedded``: the database is the embedded one (no DATABASE_URL was set). A configured
    database never gets a generated key: tokens encrypted with a key nobody set would be lost
    with the machine.
    """
    if key_for(settings) is not None or not embedded:
        return settings
    return settings.updated({"spotify": {"token_key_file": local_key(settings.data_dir)}})
