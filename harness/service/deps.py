"""FastAPI dependencies: the service's state, authentication, rate limit and role checks.

Order per request: who is it (401), is it within its key's rate (429), may its role do
this (403). FastAPI solves these before it validates parameters and body, so a refused
request never reaches the runtime (only a body that is not even JSON text is refused
before the key is looked at: FastAPI parses it first, 422 or 400).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader

from harness.service.auth import KeyRing, Principal, RateLimiter
from harness.service.views import (
    Directory,
    PromotionDumps,
    PromotionIndex,
    Runtime,
    StatusCache,
)

__all__ = [
    "API_KEY_HEADER",
    "ServiceState",
    "authenticated",
    "require",
    "service_state",
]

API_KEY_HEADER = "X-API-Key"
# Declares the scheme in /openapi.json; auto_error=False so the 401 is ours (with
# WWW-Authenticate), not FastAPI's bare 403/401.
_api_key = APIKeyHeader(
    name=API_KEY_HEADER,
    scheme_name="ApiKey",
    description="An API key; its role decides what it may do.",
    auto_error=False,
)


@dataclass
class ServiceState:
    """What every route needs, kept on ``app.state.service`` (one per app)."""

    runtime: Runtime
    keys: KeyRing
    limiter: RateLimiter
    index: PromotionIndex = field(default_factory=PromotionIndex)
    directory: Directory = field(default_factory=Directory)
    dumps: PromotionDumps = field(default_factory=PromotionDumps)
    statuses: StatusCache = field(default_factory=StatusCache)


async def service_state(request: Request) -> ServiceState:
    # async on purpose, like every dependency here: FastAPI runs a plain ``def``
    # dependency in a worker thread, a handoff that costs more than the whole read.
    return _state(request)


def _state(request: Request) -> ServiceState:
    return request.app.state.service  # type: ignore[no-any-return]


async def authenticated(
    request: Request,
    key: str | None = Security(_api_key),
) -> Principal:
    """The caller's principal; 401 for a missing or unknown key, 429 over its rate."""
    state = _state(request)
    principal = state.keys.lookup(key)
    if principal is None or not key:
        detail = "unknown API key" if key else f"missing {API_KEY_HEADER} header"
        raise HTTPException(401, detail=detail, headers={"WWW-Authenticate": "ApiKey"})
    retry_after = state.limiter.check(key)
    if retry_after is not None:
        raise HTTPException(
            429,
            detail=f"rate limit of {state.limiter.rate:g} requests/s exceeded for this key",
            headers={"Retry-After": str(retry_after)},
        )
    return principal


def require(*roles: str) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency admitting only ``roles``; 403 names the role(s) needed."""
    allowed = frozenset(roles)
    needed = " or ".join(f"'{r}'" for r in roles)

    async def check(principal: Principal = Depends(authenticated)) -> Principal:
        if principal.role not in allowed:
            raise HTTPException(
                403,
                detail=f"this needs the {needed} role; this key has '{principal.role}'",
            )
        return principal

    return check
