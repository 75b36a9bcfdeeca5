"""The OpenAPI document, made to say what the API really answers (issue 10, item 7).

FastAPI documents validation errors as 422 with its own body; this API answers 400 with
application/problem+json. Statuses any operation can give (bad input, no or bad credential,
oversized head or body, the database away) are listed on every operation, and the platform
and role fields carry their enums.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from lumio.kit.permissions import RoleName
from lumio.platforms.base import Platform

_PROBLEM = {
    "content": {
        "application/problem+json": {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}
    }
}
_DESCRIPTIONS = {
    "400": "Bad request: invalid input (problem+json, code BAD_REQUEST)",
    "401": "No valid credential (code UNAUTHENTICATED)",
    "403": "Not allowed (code FORBIDDEN)",
    "404": "Not found (code NOT_FOUND)",
    "409": "Conflict (code CONFLICT)",
    "413": "Request body too large (code PAYLOAD_TOO_LARGE)",
    "429": "Too many requests; see Retry-After (code TOO_MANY_REQUESTS)",
    "431": "Request headers too large or too many (code REQUEST_HEADER_FIELDS_TOO_LARGE)",
    "503": "A backend is unavailable; try again shortly (code UNAVAILABLE)",
}
# Possible on every operation: malformed input (a NUL in the query, say), a too large head,
# the database away. 401 wherever a credential is read (everything but sign-in, which answers
# 401 for a wrong password anyway).
_EVERYWHERE = ("400", "401", "431", "503")
_ENUMS = {"platform": [p.value for p in Platform], "role": [r.value for r in RoleName]}
_PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "ProblemDetails",
    "type": "object",
    "required": ["type", "title", "status", "code", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "code": {"type": "string"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"location": {"type": "array"}, "message": {"type": "string"}},
            },
        },
    },
}


def _problem(status: str) -> dict[str, Any]:
    return {"description": _DESCRIPTIONS.get(status, "Error"), **_PROBLEM}


def _fix_operation(operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    responses.pop("422", None)
    wanted = list(_EVERYWHERE)
    if "requestBody" in operation:
        wanted.append("413")
    for status in wanted:
        responses.setdefault(status, {})
    for status, response in responses.items():
        if status[0] in "45":
            response.update(_problem(status))
    for parameter in operation.get("parameters", []):
        _add_enum(parameter.get("name", ""), parameter.get("schema", {}))


def _add_enum(name: str, schema: dict[str, Any]) -> None:
    if name in _ENUMS and schema.get("type") == "string" and "enum" not in schema:
        schema["enum"] = _ENUMS[name]


def _fix_schemas(schemas: dict[str, Any]) -> None:
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["ProblemDetails"] = _PROBLEM_SCHEMA
    for schema in schemas.values():
        for name, prop in schema.get("properties", {}).items():
            _add_enum(name, prop)


def document(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is None:
        spec = get_openapi(
            title=app.title, version=app.version, routes=app.routes, description=app.description
        )
        for path_item in spec.get("paths", {}).values():
            for operation in path_item.values():
                _fix_operation(operation)
        _fix_schemas(spec.setdefault("components", {}).setdefault("schemas", {}))
        app.openapi_schema = spec
    return app.openapi_schema


def install(app: FastAPI) -> None:
    app.openapi = lambda: document(app)  # type: ignore[method-assign]
