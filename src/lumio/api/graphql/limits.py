"""Validation rules beyond the specification's: the query depth limit, counting every field,
introspection included (DESIGN §7); a cap on root fields (aliases included) per operation, so one
request cannot run the same resolver hundreds of times; and string literals PostgreSQL can store.

Strawberry's own depth limiter skips fields that start with ``__``, which leaves
``__schema { types { fields { type { ofType ... } } } }`` unbounded; this rule counts them.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    ValidationRule,
)

from lumio.kit.text import NOT_STORABLE, storable


def _depth(
    selection_set: SelectionSetNode | None,
    fragments: dict[str, FragmentDefinitionNode],
    seen: frozenset[str],
    limit: int,
) -> int:
    """Depth of a selection set; stops counting once past ``limit`` (enough to refuse)."""
    if selection_set is None or limit < 0:
        return 0
    deepest = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            depth = 1 + _depth(selection.selection_set, fragments, seen, limit - 1)
        elif isinstance(selection, InlineFragmentNode):
            depth = _depth(selection.selection_set, fragments, seen, limit)
        elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in seen:
            fragment = fragments.get(selection.name.value)
            inner = fragment.selection_set if fragment else None
            depth = _depth(inner, fragments, seen | {selection.name.value}, limit)
        else:
            depth = 0
        deepest = max(deepest, depth)
    return deepest


def depth_limit(max_depth: int) -> type[ValidationRule]:
    class DepthLimit(ValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
            fragments = {
                d.name.value: d
                for d in self.context.document.definitions
                if isinstance(d, FragmentDefinitionNode)
            }
            depth = _depth(node.selection_set, fragments, frozenset(), max_depth)
            if depth > max_depth:
                self.report_error(
                    GraphQLError(f"the query exceeds maximum operation depth of {max_depth}", node)
                )

    return DepthLimit


def _root_fields(
    selection_set: SelectionSetNode,
    fragments: dict[str, FragmentDefinitionNode],
    seen: frozenset[str],
) -> int:
    """Fields at the root of an operation, through fragments (each spread counted as used)."""
    count = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            count += 1
        elif isinstance(selection, InlineFragmentNode):
            count += _root_fields(selection.selection_set, fragments, seen)
        elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in seen:
            fragment = fragments.get(selection.name.value)
            if fragment is not None:
                inner_seen = seen | {selection.name.value}
                count += _root_fields(fragment.selection_set, fragments, inner_seen)
    return count


def root_field_limit(max_fields: int) -> type[ValidationRule]:
    class RootFieldLimit(ValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
            fragments = {
                d.name.value: d
                for d in self.context.document.definitions
                if isinstance(d, FragmentDefinitionNode)
            }
            if _root_fields(node.selection_set, fragments, frozenset()) > max_fields:
                self.report_error(
                    GraphQLError(
                        f"an operation may select at most {max_fields} root fields "
                        "(aliases included)",
                        node,
                    )
                )

    return RootFieldLimit


class StorableStrings(ValidationRule):
    def enter_string_value(self, node: StringValueNode, *_: Any) -> None:
        if not storable(node.value):
            self.report_error(GraphQLError(NOT_STORABLE, node))
