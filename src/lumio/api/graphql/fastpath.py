"""A plan for the simplest, most frequent queries: top-level fields returning objects (or lists
of them) whose selections are only scalar leaves, e.g. ``{ channelStatus { platform isOnline } }``.

graphql-core's general executor spends most of a request on per-field bookkeeping (paths,
completion, awaitable checks) for such queries (PERFORMANCE.md). A plan calls the very same
resolver the schema has and serialises the leaves with the schema's own scalars; anything it
does not cover -- arguments, variables, directives, fragments, mutations, nested objects, an
error, a null in a non-null field -- is left to the general executor, so answers are the same.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLBoolean,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLString,
    OperationDefinitionNode,
    OperationType,
    get_named_type,
)


class NotPlannable(Exception):
    """The plan cannot answer this request; the general executor must."""


@dataclass(frozen=True, slots=True)
class Leaf:
    key: str
    attribute: str
    scalar: GraphQLScalarType
    non_null: bool
    # The Python type whose values the scalar serialises as they are (String: str; Boolean:
    # bool), so that they skip the call: ~40 % of serialising a row of short fields.
    plain: type | None = None


PLAIN_TYPES: dict[GraphQLScalarType, type] = {GraphQLString: str, GraphQLBoolean: bool}


@dataclass(frozen=True, slots=True)
class RootField:
    key: str
    field: Any  # GraphQLField; its resolver is Strawberry's wrapper around ours
    many: bool
    non_null: bool
    leaves: tuple[Leaf, ...]


@dataclass(frozen=True, slots=True)
class _Info:
    """What Strawberry's resolver wrapper reads from graphql-core's info: the context."""

    context: Any


def _python_name(field: Any, graphql_name: str) -> str:
    definition = field.extensions.get("strawberry-definition")
    return getattr(definition, "python_name", None) or graphql_name


def _plain(node: FieldNode) -> bool:
    return not node.arguments and not node.directives


def _leaves(node: FieldNode, object_type: GraphQLObjectType) -> tuple[Leaf, ...] | None:
    leaves: list[Leaf] = []
    for selection in node.selection_set.selections if node.selection_set else ():
        if not isinstance(selection, FieldNode) or not _plain(selection) or selection.selection_set:
            return None
        name = selection.name.value
        if name.startswith("__"):
            return None
        field = object_type.fields[name]
        scalar = get_named_type(field.type)
        if not isinstance(scalar, GraphQLScalarType) or isinstance(
            field.type.of_type if isinstance(field.type, GraphQLNonNull) else field.type,
            GraphQLList,
        ):
            return None
        key = selection.alias.value if selection.alias else name
        non_null = isinstance(field.type, GraphQLNonNull)
        plain = PLAIN_TYPES.get(scalar)
        leaves.append(Leaf(key, _python_name(field, name), scalar, non_null, plain))
    return tuple(leaves)


def _root_field(node: FieldNode, query: GraphQLObjectType) -> RootField | None:
    name = node.name.value
    if not _plain(node) or name.startswith("__") or not node.selection_set:
        return None
    field = query.fields[name]
    outer = field.type
    non_null = isinstance(outer, GraphQLNonNull)
    inner = outer.of_type if isinstance(outer, GraphQLNonNull) else outer
    many = isinstance(inner, GraphQLList)
    item = inner.of_type if isinstance(inner, GraphQLList) else inner
    if many and not isinstance(item, GraphQLNonNull):
        return None
    object_type = get_named_type(item)
    if not isinstance(object_type, GraphQLObjectType):
        return None
    leaves = _leaves(node, object_type)
    if leaves is None:
        return None
    return RootField(node.alias.value if node.alias else name, field, many, non_null, leaves)


def plan(schema: GraphQLSchema, document: DocumentNode) -> tuple[RootField, ...] | None:
    """A plan for a document of one anonymous-or-named query of plain fields, else None."""
    if len(document.definitions) != 1 or schema.query_type is None:
        return None
    operation = document.definitions[0]
    if (
        not isinstance(operation, OperationDefinitionNode)
        or operation.operation is not OperationType.QUERY
        or operation.variable_definitions
        or operation.directives
    ):
        return None
    roots: list[RootField] = []
    for selection in operation.selection_set.selections:
        if not isinstance(selection, FieldNode):
            return None
        root = _root_field(selection, schema.query_type)
        if root is None:
            return None
        roots.append(root)
    return tuple(roots)


def _serialise(item: Any, leaves: tuple[Leaf, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for leaf in leaves:
        value = getattr(item, leaf.attribute)
        if value is None:
            if leaf.non_null:
                raise NotPlannable
            out[leaf.key] = None
        elif type(value) is leaf.plain:
            out[leaf.key] = value
        else:
            out[leaf.key] = leaf.scalar.serialize(value)
    return out


async def run(roots: tuple[RootField, ...], context: Any) -> dict[str, Any]:
    """Execute a plan; raises NotPlannable (or the resolver's error) for the general executor."""
    data: dict[str, Any] = {}
    info = _Info(context)
    for root in roots:
        value = root.field.resolve(None, info)
        if inspect.isawaitable(value):
            value = await value
        if value is None:
            if root.non_null:
                raise NotPlannable
            data[root.key] = None
        elif root.many:
            data[root.key] = [_serialise(item, root.leaves) for item in value]
        else:
            data[root.key] = _serialise(value, root.leaves)
    return data
