"""Errors with a meaning. Each transport renders them once (REST problem+json, GraphQL extensions)."""

from __future__ import annotations


class LumioError(Exception):
    status_code = 500
    code = "INTERNAL"
    title = "Internal error"

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail or self.title
        super().__init__(self.detail)


class BadRequest(LumioError):
    status_code = 400
    code = "BAD_REQUEST"
    title = "Bad request"


class Unauthenticated(LumioError):
    status_code = 401
    code = "UNAUTHENTICATED"
    title = "Authentication required"


class Forbidden(LumioError):
    status_code = 403
    code = "FORBIDDEN"
    title = "You do not have permission to do this"


class NotFound(LumioError):
    status_code = 404
    code = "NOT_FOUND"
    title = "Not found"


class Conflict(LumioError):
    status_code = 409
    code = "CONFLICT"
    title = "Conflict"


class PayloadTooLarge(LumioError):
    status_code = 413
    code = "PAYLOAD_TOO_LARGE"
    title = "Request body too large"


class Unavailable(LumioError):
    status_code = 503
    code = "UNAVAILABLE"
    title = "Service temporarily unavailable"


class TooManyRequests(LumioError):
    status_code = 429
    code = "TOO_MANY_REQUESTS"
    title = "Too many requests"

    def __init__(self, detail: str | None = None, retry_after: int = 1) -> None:
        super().__init__(detail)
        # Seconds, sent as the Retry-After header.
        self.retry_after = max(1, retry_after)
