"""Spotify tokens at rest: the kit's AES-256-GCM cipher (``lumio.kit.crypto``), re-exported under
the name the Spotify packages and their tests have always used."""

from lumio.kit.crypto import LOCAL_KEY_FILE as LOCAL_KEY_FILE
from lumio.kit.crypto import MISSING_KEY as MISSING_KEY
from lumio.kit.crypto import MissingTokenKey as MissingTokenKey
from lumio.kit.crypto import TokenCipher as TokenCipher
from lumio.kit.crypto import TokenUndecryptable as TokenUndecryptable
from lumio.kit.crypto import cipher_for as cipher_for
from lumio.kit.crypto import decode_key as decode_key
from lumio.kit.crypto import key_for as key_for
from lumio.kit.crypto import local_key as local_key
from lumio.kit.crypto import new_key as new_key
from lumio.kit.crypto import token_context as token_context
from lumio.kit.crypto import with_local_key as with_local_key
