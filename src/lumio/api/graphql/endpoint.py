"""The GraphQL HTTP endpoint.

Strawberry defines the schema; this endpoint executes it with graphql-core directly because the
per-request work of Strawberry's HTTP view (parsing and validating the same text again, its
extension machinery) costs several times the query itself (PERFORMANCE.md). Here a query text
is parsed and validated once (depth and token limits included) and the result is cached; each
request then only authenticates and executes.
"""

from __future__ import annotations

import contextlib
import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import orjson
from graphql import (
    DocumentNode,
    ExecutionResult,
    GraphQLError,
    GraphQLSchema,
    OperationType,
    execute,
    get_operation_ast,
    parse,
    specified_rules,
    validate,
)
from pydantic import ValidationError
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import Response

from lumio.api.graphql import fastpath
from lumio.api.graphql.limits import StorableStrings, depth_limit, root_field_limit
from lumio.api.graphql.schema import schema as strawberry_schema
from lumio.kit.errors import BadRequest, LumioError, Unavailable
from lumio.kit.graphql import Context
from lumio.kit.problems import DATABASE_DOWN, validation_detail
from lumio.kit.request_auth import authenticate_request
from lumio.kit.resources import resources_of
from lumio.kit.text import NOT_STORABLE, all_storable, storable

log = logging.getLogger(__name__)

GRAPHQL_JSON = "application/json"
UNAVAILABLE_MESSAGE = "a backend is unavailable; try again shortly"
BACKEND_DOWN: tuple[type[Exception], ...] = (RedisError, *DATABASE_DOWN)


@dataclass(frozen=True, slots=True)
class Prepared:
    document: DocumentNode | None
    errors: tuple[GraphQLError, ...]
    plan: tuple[fastpath.RootField, ...] | None = None


class DocumentCache:
    """Parsed and validated documents by query text (bounded, least recently used out)."""

    def __init__(
        self, schema: GraphQLSchema, max_depth: int, max_tokens: int, max_root_fields: int
    ) -> None:
        self.schema = schema
        self.max_tokens = max_tokens
        self.rules = (
            *specified_rules,
            depth_limit(max_depth),
            root_field_limit(max_root_fields),
            StorableStrings,
        )
        self._entries: OrderedDict[str, Prepared] = OrderedDict()
        self._max_entries = 1000

    def get(self, query: str) -> Prepared:
        found = self._entries.get(query)
        if found is None:
            found = self._prepare(query)
            self._entries[query] = found
            if len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)
        return found

    def _prepare(self, query: str) -> Prepared:
        try:
            document = parse(query, max_tokens=self.max_tokens)
        except GraphQLError as error:
            return Prepared(None, (error,))
        errors = validate(self.schema, document, self.rules)
        if errors:
            return Prepared(None, tuple(errors))
        return Prepared(document, (), fastpath.plan(self.schema, document))


def _error_json(error: GraphQLError, code: str, message: str | None = None) -> dict[str, Any]:
    formatted: dict[str, Any] = {"message": message or error.message}
    if error.locations:
        formatted["locations"] = [
            {"line": loc.line, "column": loc.column} for loc in error.locations
        ]
    if error.path:
        formatted["path"] = error.path
    formatted["extensions"] = {"code": code}
    return formatted


def _execution_error_json(error: GraphQLError) -> dict[str, Any]:
    original = error.original_error
    if isinstance(original, LumioError):
        return _error_json(error, original.code, original.detail)
    if isinstance(original, ValidationError):
        # A resolver's input model refused its arguments (an empty url, too many events): the
        # client's mistake, said as REST says it, never an internal error.
        return _error_json(error, BadRequest.code, _invalid_input(original))
    if isinstance(original, (RedisError, *DATABASE_DOWN)):
        log.warning("GraphQL resolver could not reach a backend: %r", original)
        return _error_json(error, Unavailable.code, UNAVAILABLE_MESSAGE)
    if original is not None:
        log.error("GraphQL resolver failed", exc_info=original)
        return _error_json(error, "INTERNAL", "internal error")
    return _error_json(error, BadRequest.code)


def _invalid_input(error: ValidationError) -> str:
    return "invalid input: " + validation_detail(error.errors(include_url=False)[:5], "input")


def _respond(body: dict[str, Any], status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, media_type=GRAPHQL_JSON)


def _request_errors(status: int, code: str, *messages: str) -> Response:
    return _respond(
        {"errors": [{"message": m, "extensions": {"code": code}} for m in messages]}, status
    )


async def _read_params(request: Request) -> dict[str, Any]:
    if request.method == "GET":
        params: dict[str, Any] = dict(request.query_params)
        if "variables" in params:
            try:
                params["variables"] = orjson.loads(params["variables"])
            except orjson.JSONDecodeError as exc:
                raise BadRequest("variables is not valid JSON") from exc
        return params
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("application/json"):
        raise BadRequest("send GraphQL requests as application/json")
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object with a 'query'")
    return body


def _check_params(params: dict[str, Any]) -> tuple[str, dict[str, Any] | None, str | None]:
    unknown = set(params) - {"query", "variables", "operationName", "extensions"}
    if unknown:
        raise BadRequest(f"unknown request fields: {', '.join(sorted(unknown))}")
    query, variables, operation = (
        params.get("query"),
        params.get("variables"),
        params.get("operationName"),
    )
    if not isinstance(query, str) or not query.strip():
        raise BadRequest("'query' must be a non-empty string")
    if variables is not None and not isinstance(variables, dict):
        raise BadRequest("'variables' must be an object")
    if operation is not None and not isinstance(operation, str):
        raise BadRequest("'operationName' must be a string")
    if not all_storable(variables) or not storable(operation or ""):
        raise BadRequest(NOT_STORABLE)
    return query, variables, operation


class GraphQLEndpoint:
    def __init__(self, max_depth: int, max_tokens: int, max_root_fields: int = 20) -> None:
        self.schema = strawberry_schema._schema
        self.documents = DocumentCache(self.schema, max_depth, max_tokens, max_root_fields)

    async def handle(self, request: Request) -> Response:
        try:
            return await self._handle(request)
        except LumioError as error:
            return _request_errors(error.status_code, error.code, error.detail)
        except BACKEND_DOWN as error:
            # Outside the resolvers (authenticating, once the credential cache has expired): a
            # GraphQL client still gets a GraphQL error, never the REST problem document.
            log.warning("GraphQL request could not reach a backend: %r", error)
            return _request_errors(503, Unavailable.code, UNAVAILABLE_MESSAGE)

    async def _handle(self, request: Request) -> Response:
        principal = await authenticate_request(request, request.method)
        query, variables, operation_name = _check_params(await _read_params(request))
        prepared = self.documents.get(query)
        if prepared.document is None:
            return _respond(
                {"errors": [_error_json(e, BadRequest.code) for e in prepared.errors]}, 400
            )
        operation = get_operation_ast(prepared.document, operation_name)
        if operation is None:
            raise BadRequest(
                "no operation of that name, or several operations and no operationName"
            )
        if request.method == "GET" and operation.operation is not OperationType.QUERY:
            return _request_errors(405, "METHOD_NOT_ALLOWED", "mutations must be sent with POST")
        context = Context(resources_of(request), principal, request)
        if prepared.plan is not None and not variables:
            # Any failure (an error, a null where none may be) is rendered by the general executor.
            with contextlib.suppress(Exception):
                return _respond({"data": await fastpath.run(prepared.plan, context)})
        result = execute(
            self.schema,
            prepared.document,
            context_value=context,
            variable_values=variables,
            operation_name=operation_name,
        )
        if not isinstance(result, ExecutionResult):
            result = await result
        return self._render(result)

    def _render(self, result: ExecutionResult) -> Response:
        if result.errors and result.data is None and all(e.path is None for e in result.errors):
            # Variable coercion failed (resolver errors always carry a path): nothing ran.
            return _respond(
                {"errors": [_error_json(e, BadRequest.code) for e in result.errors]}, 400
            )
        body: dict[str, Any] = {"data": result.data}
        if result.errors:
            body["errors"] = [_execution_error_json(e) for e in result.errors]
        return _respond(body)
