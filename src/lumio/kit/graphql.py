"""The GraphQL context: light on purpose, built once per request."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from strawberry.types import Info as StrawberryInfo

from lumio.kit.principal import Principal
from lumio.kit.resources import Resources


@dataclass(slots=True)
class Context:
    resources: Resources
    principal: Principal
    request: Request


Info = StrawberryInfo[Context, None]
