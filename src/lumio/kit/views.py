"""Output shapes: each is declared once, as an ``ApiModel``; REST uses it as the response model
and GraphQL derives its type from it (``strawberry.experimental.pydantic.type``), so the two
transports cannot drift apart."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, Protocol
from uuid import UUID

import orjson
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel
from starlette.responses import Response


class ApiModel(BaseModel):
    """REST bodies: JSON names match the GraphQL names (camelCase); unknown fields are refused."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


def _default(value: object) -> str:
    # asyncpg's UUID subclasses uuid.UUID, which orjson serialises only exactly.
    if isinstance(value, UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def json_response(content: object, status_code: int = 200) -> Response:
    """Serialise with orjson straight away; the route's response_model documents the shape."""
    body = orjson.dumps(content, default=_default)
    return Response(body, status_code, media_type="application/json")


def views_response(views: Sequence[ApiModel]) -> Response:
    """A list of views as the route's response_model renders them, without FastAPI's
    re-validation (the views were validated when they were made)."""
    return json_response([view.model_dump(by_alias=True) for view in views])


class Row(Protocol):
    """A database row read by column name (an asyncpg Record)."""

    def __getitem__(self, key: str) -> Any: ...


@functools.cache
def _json_names(model: type[ApiModel]) -> tuple[tuple[str, str], ...]:
    return tuple((name, field.alias or name) for name, field in model.model_fields.items())


def rows_response(model: type[ApiModel], rows: Sequence[Row]) -> Response:
    """Rows whose columns are ``model``'s fields, rendered as its views would be, without a
    model per row: for reads whose values PostgreSQL's column types already guarantee."""
    names = _json_names(model)
    return json_response([{alias: row[name] for name, alias in names} for row in rows])
