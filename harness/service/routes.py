"""Governed promotion services: create, the lifecycle commands, and the promotion reads.

Every command becomes one orchestrator event (``harness.orchestrator.events``) handed to
the runtime; the lifecycle table decides whether it is legal (409 otherwise, see
``app.py``). Roles are listed in ``auth.py``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response

from harness.domain.promotion import IDENT_PATTERN, Promotion
from harness.orchestrator.events import (
    Approve,
    CreateDraft,
    End,
    Pause,
    Publish,
    Reconcile,
    Reject,
    Resume,
    Rollback,
    Schedule,
    Settle,
    Submit,
    TargetScope,
    Validate,
)
from harness.service.auth import Principal
from harness.service.deps import ServiceState, authenticated, require, service_state
from harness.service.models import (
    AUTH_ERRORS,
    BODY_ERRORS,
    CONFLICT,
    NOT_FOUND,
    ChannelBody,
    PromotionDetail,
    PromotionList,
    PromotionState,
    RejectBody,
    RollbackBody,
    ScheduleBody,
    ScopeBody,
)
from harness.service.views import propagation

__all__ = ["router"]

_COMMAND_ERRORS: dict[int | str, dict[str, Any]] = {
    **BODY_ERRORS,
    404: NOT_FOUND,
    409: CONFLICT,
}

router = APIRouter(prefix="/v1/promotions", tags=["promotions"], responses=AUTH_ERRORS)

PromoId = Annotated[str, Path(pattern=IDENT_PATTERN, description="The promotion's id.")]
State = Annotated[ServiceState, Depends(service_state)]
Merchandiser = Annotated[Principal, Depends(require("merchandiser"))]
Checker = Annotated[Principal, Depends(require("merchandiser", "approver"))]
Approver = Annotated[Principal, Depends(require("approver"))]
Operator = Annotated[Principal, Depends(require("operator"))]
Finance = Annotated[Principal, Depends(require("finance"))]
Reader = Annotated[Principal, Depends(authenticated)]


def _scope(body: ScopeBody | None) -> TargetScope:
    if body is None:
        return TargetScope()
    return TargetScope(tuple(body.channels), tuple(body.regions), tuple(body.stores))


def _state_of(state: ServiceState, promo: str) -> dict[str, Any]:
    orch = state.runtime.orchestrator  # looked up each time: a restart replaces it
    return {"id": promo, "version": orch.promotion(promo).version, "state": orch.status(promo)}


async def _command(state: ServiceState, event: Any, promo: str) -> dict[str, Any]:
    await state.runtime.submit(event)
    return _state_of(state, promo)


def _command_route(path: str, status: int = 200, summary: str = "") -> Any:
    return router.post(
        path,
        status_code=status,
        response_model=PromotionState,
        responses=_COMMAND_ERRORS,
        summary=summary or None,
    )


@router.post(
    "",
    status_code=201,
    response_model=PromotionState,
    responses=_COMMAND_ERRORS,
    summary="Create a draft (merchandiser)",
)
async def create(promotion: Promotion, state: State, who: Merchandiser) -> dict[str, Any]:
    return await _command(state, CreateDraft(promotion, actor=who.name), promotion.id)


@router.get("", response_model=PromotionList, summary="List promotions and their states")
async def list_promotions(state: State, _: Reader) -> dict[str, Any]:
    orch = state.runtime.orchestrator
    out = []
    for promo in state.index.ids(state.runtime):
        p = orch.promotion(promo)
        out.append({"id": promo, "version": p.version, "name": p.name, "state": orch.status(promo)})
    return {"promotions": out}


@router.get(
    "/{promo}",
    response_model=PromotionDetail,
    responses={404: NOT_FOUND},
    summary="A promotion, its state and its propagation to every endpoint",
)
async def get_promotion(
    promo: PromoId,
    state: State,
    _: Reader,
    endpoints: Annotated[bool, Query(description="false: counts only, no rows")] = True,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> Response:
    orch = state.runtime.orchestrator
    head = _state_of(state, promo)  # fresh: a state change is never served stale

    def build() -> dict[str, Any]:
        return {
            **head,
            "promotion": state.dumps.of(orch.promotion(promo)),
            "propagation": propagation(
                orch, promo, endpoints=endpoints, offset=offset, limit=limit
            ),
        }

    key = (promo, head["version"], head["state"], endpoints, offset, limit)
    # Serialized by hand (and briefly cached, see views.StatusCache): validating and
    # encoding 600 rows per read would cost more than the read itself. The declared
    # response_model still documents the shape.
    return Response(state.statuses.get(key, build), media_type="application/json")


@_command_route("/{promo}/submit", summary="Submit a draft (merchandiser)")
async def submit(promo: PromoId, state: State, who: Merchandiser) -> dict[str, Any]:
    return await _command(state, Submit(promo, actor=who.name), promo)


@_command_route(
    "/{promo}/validate", 202, "Ask the ERP to validate: funding, references (merch., approver)"
)
async def validate(promo: PromoId, state: State, who: Checker) -> dict[str, Any]:
    return await _command(state, Validate(promo, actor=who.name), promo)


@_command_route("/{promo}/approve", summary="Approve (approver)")
async def approve(promo: PromoId, state: State, who: Approver) -> dict[str, Any]:
    return await _command(state, Approve(promo, actor=who.name), promo)


@_command_route("/{promo}/reject", summary="Reject with a reason (approver)")
async def reject(
    promo: PromoId, state: State, who: Approver, body: RejectBody | None = None
) -> dict[str, Any]:
    reason = body.reason if body is not None else ""
    return await _command(state, Reject(promo, reason, actor=who.name), promo)


@_command_route("/{promo}/schedule", summary="Publish automatically at a time (operator)")
async def schedule(
    promo: PromoId, body: ScheduleBody, state: State, who: Operator
) -> dict[str, Any]:
    event = Schedule(promo, body.publish_at, _scope(body), actor=who.name)
    return await _command(state, event, promo)


@_command_route("/{promo}/publish", 202, "Publish to all or a sub-scope (operator)")
async def publish(
    promo: PromoId, state: State, who: Operator, body: ScopeBody | None = None
) -> dict[str, Any]:
    return await _command(state, Publish(promo, _scope(body), actor=who.name), promo)


@_command_route("/{promo}/pause", summary="Hold one channel's deliveries (operator)")
async def pause(promo: PromoId, body: ChannelBody, state: State, who: Operator) -> dict[str, Any]:
    return await _command(state, Pause(promo, body.channel, actor=who.name), promo)


@_command_route("/{promo}/resume", summary="Release a held channel (operator)")
async def resume(promo: PromoId, body: ChannelBody, state: State, who: Operator) -> dict[str, Any]:
    return await _command(state, Resume(promo, body.channel, actor=who.name), promo)


@_command_route("/{promo}/rollback", 202, "Take back from all or a sub-scope (operator)")
async def rollback(
    promo: PromoId, state: State, who: Operator, body: RollbackBody | None = None
) -> dict[str, Any]:
    deadline = body.deadline if body is not None else RollbackBody().deadline
    event = Rollback(promo, _scope(body), deadline, actor=who.name)
    return await _command(state, event, promo)


@_command_route("/{promo}/end", summary="End the promotion (operator)")
async def end(promo: PromoId, state: State, who: Operator) -> dict[str, Any]:
    return await _command(state, End(promo, actor=who.name), promo)


@_command_route("/{promo}/settle", summary="Settle an ended promotion (finance)")
async def settle(promo: PromoId, state: State, who: Finance) -> dict[str, Any]:
    return await _command(state, Settle(promo, actor=who.name), promo)


@_command_route("/{promo}/reconcile", summary="Reconcile a settled promotion (finance)")
async def reconcile(promo: PromoId, state: State, who: Finance) -> dict[str, Any]:
    return await _command(state, Reconcile(promo, actor=who.name), promo)
