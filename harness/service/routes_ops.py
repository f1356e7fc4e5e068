"""Operations routes: the audit trail, the dead-letter queue, and channel callbacks."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import JSONResponse

from harness.domain.promotion import IDENT_PATTERN
from harness.orchestrator.events import Ack, ReplayDeadLetters
from harness.service.auth import Principal
from harness.service.deps import ServiceState, authenticated, require, service_state
from harness.service.models import (
    AUTH_ERRORS,
    BODY_ERRORS,
    AckBody,
    AckRefused,
    AckResult,
    AuditPage,
    DeadLetterList,
    ErrorBody,
    ReplayBody,
    ReplayResult,
)
from harness.service.views import audit_page, dead_letter_dicts

__all__ = ["router"]

router = APIRouter(prefix="/v1", responses=AUTH_ERRORS)
State = Annotated[ServiceState, Depends(service_state)]
Reader = Annotated[Principal, Depends(authenticated)]


@router.get("/audit", response_model=AuditPage, tags=["audit"], summary="The audit trail")
async def audit(
    state: State,
    _: Reader,
    # Bounded by what SQLite's INTEGER (the record seq) can hold.
    since: Annotated[
        int, Query(ge=0, le=2**62, description="Cursor: a previous page's 'next'")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    promo: Annotated[str | None, Query(pattern=IDENT_PATTERN)] = None,
) -> dict[str, Any]:
    records, cursor = audit_page(state.runtime, since, limit, promo)
    return {"records": [r._asdict() for r in records], "next": cursor}


@router.get(
    "/dead-letters",
    response_model=DeadLetterList,
    tags=["dead letters"],
    summary="Deliveries given up on",
)
async def dead_letters(state: State, _: Reader) -> dict[str, Any]:
    return {"dead_letters": dead_letter_dicts(state.runtime.orchestrator)}


@router.post(
    "/dead-letters/replay",
    status_code=202,
    response_model=ReplayResult,
    responses=BODY_ERRORS,
    tags=["dead letters"],
    summary="Give dead letters a fresh set of attempts (operator)",
)
async def replay(
    state: State,
    who: Annotated[Principal, Depends(require("operator"))],
    body: ReplayBody | None = None,
) -> dict[str, Any]:
    promo = body.promo if body is not None else None
    endpoint = body.endpoint if body is not None else None
    orch = state.runtime.orchestrator
    matched = sum(
        1
        for e in orch.dead_letters()
        if (promo is None or e.promo == promo) and (endpoint is None or e.endpoint == endpoint)
    )
    await state.runtime.submit(ReplayDeadLetters(promo, endpoint, actor=who.name))
    return {"matched": matched, "remaining": len(state.runtime.orchestrator.dead_letters())}


@router.post(
    "/callbacks/ack",
    status_code=202,
    response_model=AckResult,
    responses={
        **BODY_ERRORS,
        404: {"model": ErrorBody, "description": "Unknown promotion or endpoint"},
        409: {
            "model": AckRefused,
            "description": "No delivery of that version and op was sent and awaits an ack "
            "(never sent, another version, already settled): recorded as stale, ignored",
        },
    },
    tags=["callbacks"],
    summary="A channel adapter acknowledges a delivery (channel key of that channel)",
)
async def ack(
    body: AckBody,
    state: State,
    who: Annotated[Principal, Depends(require("channel"))],
) -> dict[str, Any] | JSONResponse:
    orch = state.runtime.orchestrator
    channel = state.directory.channel(orch, body.endpoint)
    if channel is None:
        raise HTTPException(404, detail=f"unknown endpoint '{body.endpoint}'")
    if channel != who.channel:
        raise HTTPException(
            403,
            detail=f"endpoint '{body.endpoint}' is a {channel} endpoint; "
            f"this key speaks for {who.channel} only",
        )
    orch.status(body.promo)  # UnknownPromotion -> 404 before anything is journalled
    event = Ack(body.endpoint, body.promo, body.version, body.op, body.detail)
    # Asked just before the core handles it (submit runs ``handle`` without an await in
    # between); the core applies this very rule and journals a refused ack as stale.
    refusal = orch.ack_refusal(event)
    await state.runtime.submit(event)
    answer: dict[str, Any] = {
        "endpoint": body.endpoint,
        "promo": body.promo,
        "delivery_state": state.runtime.orchestrator.delivery_state(body.promo, body.endpoint),
    }
    if refusal is None:
        return answer
    answer |= {"detail": refusal.detail, "reason": refusal.reason}
    return JSONResponse(answer, status_code=409)
