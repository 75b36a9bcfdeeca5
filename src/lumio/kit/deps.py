"""FastAPI dependencies: the resources and the principal of a request."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from pydantic import BaseModel, field_validator

from lumio.kit import views
from lumio.kit.principal import Principal
from lumio.kit.request_auth import authenticate_request
from lumio.kit.resources import Resources, resources_of
from lumio.kit.text import NOT_STORABLE, all_storable


async def _principal(request: Request) -> Principal:
    return await authenticate_request(request, request.method)


# async on purpose: FastAPI runs a plain function dependency in a thread pool.
async def _resources(request: Request) -> Resources:
    return resources_of(request)


CurrentPrincipal = Annotated[Principal, Depends(_principal)]
AppResources = Annotated[Resources, Depends(_resources)]


class ApiModel(views.ApiModel):
    """REST bodies: JSON names match the GraphQL names (camelCase); unknown fields are refused,
    and so is text PostgreSQL cannot store (a NUL, a lone surrogate): 400, never a 500."""

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        if not all_storable(value):
            raise ValueError(NOT_STORABLE)
        return value


class ProblemDetails(BaseModel):
    type: str = "about:blank"
    title: str
    status: int
    code: str
    detail: str


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        status: {"model": ProblemDetails, "content": {"application/problem+json": {}}}
        for status in statuses
    }
