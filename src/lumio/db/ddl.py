"""Helpers for migrations written as plain DDL."""

from __future__ import annotations

from alembic import op


def statements(script: str) -> list[str]:
    """Split a DDL script into statements at lines that end with ';' (asyncpg runs one at a time)."""
    result: list[str] = []
    current: list[str] = []
    for line in script.splitlines():
        current.append(line)
        if line.rstrip().endswith(";"):
            result.append("\n".join(current).strip())
            current = []
    if "\n".join(current).strip():
        result.append("\n".join(current).strip())
    return result


def execute_script(script: str) -> None:
    for statement in statements(script):
        op.execute(statement)
