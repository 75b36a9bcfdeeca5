"""REST: sign in and out, my accounts, switching the active account, API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request
from pydantic import Field
from starlette.responses import Response

from lumio.auth import service
from lumio.auth.schemas import ApiKeyInfo, SignInAttempt
from lumio.auth.throttle import LoginThrottle
from lumio.kit import secrets
from lumio.kit.deps import ApiModel, AppResources, CurrentPrincipal, json_response
from lumio.kit.deps import problem_responses as errors
from lumio.kit.errors import BadRequest
from lumio.kit.principal import Credential, Principal
from lumio.kit.request_auth import SESSION_COOKIE
from lumio.kit.resources import resources_of

router = APIRouter(tags=["authentication"])


class LoginIn(ApiModel):
    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=1024)


class AccountOut(ApiModel):
    id: UUID
    name: str
    role: str
    active: bool


class MeOut(ApiModel):
    user_id: UUID
    active_account_id: UUID | None
    accounts: list[AccountOut]
    # What this credential may do on the active account (the dashboard offers only these).
    permissions: list[str]
    # Present for a session: send it as X-CSRF-Token on writes.
    csrf_token: str | None


class SwitchIn(ApiModel):
    account_id: UUID


class ApiKeyOut(ApiModel):
    id: UUID
    prefix: str
    name: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None = Field(
        default=None, description="Recorded at most once a minute"
    )

    @classmethod
    def of(cls, info: ApiKeyInfo) -> ApiKeyOut:
        return cls(
            id=info.id,
            prefix=info.prefix,
            name=info.name,
            created_at=info.created_at,
            revoked_at=info.revoked_at,
            last_used_at=info.last_used_at,
        )


class CreatedApiKeyOut(ApiModel):
    api_key: ApiKeyOut
    key: str = Field(description="The secret; shown only in this answer")


class CreateApiKeyIn(ApiModel):
    name: str = Field(default="", max_length=200)


def _secure(request: Request) -> bool:
    configured = resources_of(request).settings.cookie_secure
    return request.url.scheme == "https" if configured is None else configured


def _require_json(request: Request) -> None:
    # A form post from another site cannot send JSON without a CORS preflight: this keeps
    # login CSRF out.
    if not request.headers.get("content-type", "").startswith("application/json"):
        raise BadRequest("send the body as application/json")


async def _me(resources: AppResources, principal: Principal, csrf: str | None) -> MeOut:
    accounts = [
        AccountOut(id=v.id, name=v.name, role=v.role, active=v.active)
        for v in await service.my_accounts(resources.db, principal)
    ]
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
        settings.session_ttl_seconds,
        resources.hashing,
    )
    principal = await service.authenticate(
        resources.db, resources.auth_cache, result.session_token, Credential.SESSION
    )
    me = await _me(resources, principal, result.csrf_token)
    response = Response(me.model_dump_json(by_alias=True), media_type="application/json")
    response.set_cookie(
        SESSION_COOKIE,
        result.session_token,
        max_age=settings.session_ttl_seconds,
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
    return await _me(resources, principal, csrf)


@router.get("/me/accounts", response_model=list[AccountOut], responses=errors(401))
async def my_accounts(principal: CurrentPrincipal, resources: AppResources) -> list[AccountOut]:
    return (await _me(resources, principal, None)).accounts


@router.put("/me/active-account", response_model=MeOut, responses=errors(400, 401, 403, 404))
async def switch_active_account(
    body: SwitchIn, request: Request, principal: CurrentPrincipal, resources: AppResources
) -> MeOut:
    await service.switch_account(
        resources.db, resources.redis, resources.auth_cache, principal, body.account_id
    )
    token = request.cookies.get(SESSION_COOKIE, "")
    switched = await service.reload_session(
        resources.db, resources.auth_cache, principal.token_hash
    )
    return await _me(resources, switched, secrets.csrf_token_for(token))


@router.get(
    "/api-keys",
    response_model=list[ApiKeyOut],
    responses=errors(400, 401, 404),
    summary="The user's keys on the active account (a key sees only itself), oldest first",
    description="Paginated: at most `limit` keys; when there are more, the `Link` header "
    "(rel=next) gives the next page (`after` = the last key's id).",
)
async def list_api_keys(
    request: Request,
    principal: CurrentPrincipal,
    resources: AppResources,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    after: UUID | None = None,
) -> Response:
    page = await service.list_api_keys(resources.db, principal, after, limit)
    body = [ApiKeyOut.of(k).model_dump(mode="json", by_alias=True) for k in page.keys]
    response = json_response(body)
    if page.next_after is not None:
        url = request.url.include_query_params(limit=limit, after=str(page.next_after))
        response.headers["Link"] = f'<{url.path}?{url.query}>; rel="next"'
    return response


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
        resources.db, principal, body.name, resources.settings.api_keys_per_user
    )
    return CreatedApiKeyOut(api_key=ApiKeyOut.of(created.info), key=created.key)


@router.delete(
    "/api-keys/{key_id}",
    status_code=204,
    responses=errors(400, 401, 403, 404),
    summary="Revoke one key (signed-in session with CSRF only; an API key gets 403)",
)
async def revoke_api_key(
    key_id: UUID, principal: CurrentPrincipal, resources: AppResources
) -> Response:
    await service.revoke_api_key(
        resources.db, resources.redis, resources.auth_cache, key_id, principal
    )
    return Response(status_code=204)
