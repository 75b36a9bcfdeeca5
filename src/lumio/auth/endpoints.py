"""REST: sign in and out, my accounts, switching the active account, API keys."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Request
from pydantic import Field
from starlette.responses import Response

from lumio.auth import service
from lumio.auth.schemas import (
    AccountApiKeyInfo,
    AccountView,
    ApiKeyInfo,
    SessionInfo,
    SignInAttempt,
)
from lumio.auth.throttle import LoginThrottle
from lumio.kit import secrets
from lumio.kit.deps import ApiModel, AppResources, CurrentPrincipal
from lumio.kit.deps import problem_responses as errors
from lumio.kit.errors import BadRequest
from lumio.kit.principal import Credential, Principal
from lumio.kit.request_auth import SESSION_COOKIE
from lumio.kit.resources import resources_of
from lumio.kit.views import json_response

router = APIRouter(tags=["authentication"])


class LoginIn(ApiModel):
    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=1024)


class MeOut(ApiModel):
    user_id: UUID
    active_account_id: UUID | None
    accounts: list[AccountView]
    # What this credential may do on the active account (the dashboard offers only these).
    permissions: list[str]
    # Present for a session: send it as X-CSRF-Token on writes.
    csrf_token: str | None


class SwitchIn(ApiModel):
    account_id: UUID


class PasswordIn(ApiModel):
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)


# own: the caller's keys on the active account; account: every key of it (Owners only).
KeyScope = Literal["own", "account"]


class CreatedApiKeyOut(ApiModel):
    api_key: ApiKeyInfo
    key: str = Field(description="The secret; shown only in this answer")


class CreateApiKeyIn(ApiModel):
    name: str = Field(default="", max_length=200)


def _secure(request: Request) -> bool:
    configured = resources_of(request).settings.api.cookie_secure
    return request.url.scheme == "https" if configured is None else configured


def _require_json(request: Request) -> None:
    # A form post from another site cannot send JSON without a CORS preflight: this keeps
    # login CSRF out.
    if not request.headers.get("content-type", "").startswith("application/json"):
        raise BadRequest("send the body as application/json")


def _me(principal: Principal, accounts: list[AccountView], csrf: str | None) -> MeOut:
    return MeOut(
        user_id=principal.user_id,
        active_account_id=principal.account_id,
        accounts=accounts,
        permissions=sorted(principal.permissions),
        csrf_token=csrf,
    )


@router.post(
    "/auth/login",
    response_model=MeOut,
    responses=errors(400, 401, 429),
    summary="Sign in; failures are throttled per account and address (429 with Retry-After)",
)
async def login(body: LoginIn, request: Request, resources: AppResources) -> Response:
    _require_json(request)
    settings = resources.settings
    address = request.client.host if request.client else "unknown"
    result = await service.login(
        resources.db,
        LoginThrottle.of(resources.redis, settings),
        SignInAttempt(body.email, body.password, address),
        settings.api.session_ttl,
        resources.hashing,
    )
    principal = await service.authenticate(
        resources.db, resources.auth_cache, result.session_token, Credential.SESSION
    )
    accounts = await service.my_accounts(resources.db, principal)
    me = _me(principal, accounts, result.csrf_token)
    response = Response(me.model_dump_json(by_alias=True), media_type="application/json")
    response.set_cookie(
        SESSION_COOKIE,
        result.session_token,
        max_age=int(settings.api.session_ttl.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        path="/",
    )
    return response


@router.post("/auth/logout", status_code=204, responses=errors(401, 403))
async def logout(principal: CurrentPrincipal, resources: AppResources) -> Response:
    await service.logout(resources.db, resources.redis, resources.auth_cache, principal)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/me", response_model=MeOut, responses=errors(401))
async def me(request: Request, principal: CurrentPrincipal, resources: AppResources) -> MeOut:
    token = request.cookies.get(SESSION_COOKIE)
    csrf = None
    if principal.credential is Credential.SESSION and token is not None:
        csrf = secrets.csrf_token_for(token)
    return _me(principal, await service.my_accounts(resources.db, principal), csrf)


@router.get("/me/accounts", response_model=list[AccountView], responses=errors(401))
async def my_accounts(principal: CurrentPrincipal, resources: AppResources) -> list[AccountView]:
    return await service.my_accounts(resources.db, principal)


@router.put("/me/active-account", response_model=MeOut, responses=errors(400, 401, 403, 404))
async def switch_active_account(
    body: SwitchIn, request: Request, principal: CurrentPrincipal, resources: AppResources
) -> MeOut:
    switched, accounts = await service.switch_and_list(
        resources.db, resources.redis, resources.auth_cache, principal, body.account_id
    )
    token = request.cookies.get(SESSION_COOKIE, "")
    return _me(switched, accounts, secrets.csrf_token_for(token))


@router.get(
    "/api-keys",
    response_model=list[ApiKeyInfo] | list[AccountApiKeyInfo],
    responses=errors(400, 401, 403, 404),
    summary="The user's keys on the active account (a key sees only itself), oldest first",
    description="Paginated: at most `limit` keys; when there are more, the `Link` header "
    "(rel=next) gives the next page (`after` = the last key's id). `scope=account`: every key "
    "of the account, with whose it is (Owners only).",
)
async def list_api_keys(
    request: Request,
    principal: CurrentPrincipal,
    resources: AppResources,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    after: UUID | None = None,
    scope: KeyScope = "own",
) -> Response:
    if scope == "account":
        keys = await service.list_account_api_keys(resources.db, principal)
        return json_response(_rendered(keys))
    page = await service.list_api_keys(resources.db, principal, after, limit)
    response = json_response(_rendered(page.keys))
    if page.next_after is not None:
        url = request.url.include_query_params(limit=limit, after=str(page.next_after))
        response.headers["Link"] = f'<{url.path}?{url.query}>; rel="next"'
    return response


def _rendered(keys: Sequence[ApiKeyInfo]) -> list[dict[str, object]]:
    return [key.model_dump(mode="json", by_alias=True) for key in keys]


@router.post(
    "/api-keys",
    response_model=CreatedApiKeyOut,
    status_code=201,
    responses=errors(400, 401, 403, 404, 409),
    summary="Create a key (signed-in session with CSRF only; an API key gets 403)",
)
async def create_api_key(
    body: CreateApiKeyIn, principal: CurrentPrincipal, resources: AppResources
) -> CreatedApiKeyOut:
    created = await service.create_api_key_for(
        resources.db, principal, body.name, resources.settings.api.api_keys_per_user
    )
    return CreatedApiKeyOut(api_key=created.info, key=created.key)


@router.delete(
    "/api-keys/{key_id}",
    status_code=204,
    responses=errors(400, 401, 403, 404),
    summary="Revoke one key (signed-in session with CSRF only; an API key gets 403)",
)
async def revoke_api_key(
    key_id: UUID,
    principal: CurrentPrincipal,
    resources: AppResources,
    scope: KeyScope = "own",
) -> Response:
    res = resources
    if scope == "account":
        await service.revoke_account_api_key(res.db, res.redis, res.auth_cache, principal, key_id)
    else:
        await service.revoke_api_key(res.db, res.redis, res.auth_cache, key_id, principal)
    return Response(status_code=204)


@router.put("/me/password", status_code=204, responses=errors(400, 401, 403))
async def change_password(
    body: PasswordIn, principal: CurrentPrincipal, resources: AppResources
) -> Response:
    """Needs the current password; every other session of the user ends."""
    res = resources
    await service.change_password(
        res.db, res.redis, res.auth_cache, principal, body.current_password, body.new_password
    )
    return Response(status_code=204)


@router.get("/me/sessions", response_model=list[SessionInfo], responses=errors(401))
async def list_sessions(principal: CurrentPrincipal, resources: AppResources) -> list[SessionInfo]:
    return await service.list_sessions(resources.db, principal)


@router.delete("/me/sessions/{session_id}", status_code=204, responses=errors(401, 403, 404))
async def end_session(
    session_id: UUID, principal: CurrentPrincipal, resources: AppResources
) -> Response:
    res = resources
    await service.end_session(res.db, res.redis, res.auth_cache, principal, session_id)
    return Response(status_code=204)
