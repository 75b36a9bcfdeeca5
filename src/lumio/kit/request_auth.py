"""Authenticating a request, shared by the REST dependencies and the GraphQL endpoint."""

from __future__ import annotations

from starlette.requests import HTTPConnection

from lumio.kit import secrets
from lumio.kit.errors import Forbidden, Unauthenticated
from lumio.kit.principal import Credential, Principal
from lumio.kit.resources import resources_of

SESSION_COOKIE = "lumio_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def bearer_token(conn: HTTPConnection) -> str | None:
    header = conn.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("the Authorization header must be 'Bearer <API key>'")
    return token.strip()


async def authenticate_request(conn: HTTPConnection, method: str) -> Principal:
    """The principal of a request: an API key (Bearer) or a session cookie.

    Cookie-authenticated writes must carry the session's CSRF token in ``X-CSRF-Token``; a
    Bearer key is never sent by a browser on its own, so it needs none.
    """
    resources = resources_of(conn)
    token = bearer_token(conn)
    if token is not None:
        return await resources.authenticator(
            resources.db, resources.auth_cache, token, Credential.API_KEY
        )
    session_token = conn.cookies.get(SESSION_COOKIE)
    if not session_token:
        raise Unauthenticated("sign in or send an API key as 'Authorization: Bearer <key>'")
    principal = await resources.authenticator(
        resources.db, resources.auth_cache, session_token, Credential.SESSION
    )
    if method not in SAFE_METHODS and not secrets.csrf_matches(
        session_token, conn.headers.get(CSRF_HEADER)
    ):
        raise Forbidden("missing or wrong X-CSRF-Token header for a cookie-authenticated write")
    return principal
