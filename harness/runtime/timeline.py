"""Scenario timeline steps -> orchestrator operator commands (shared by both runtimes)."""

from __future__ import annotations

from collections.abc import Mapping

from harness.domain.promotion import Promotion
from harness.orchestrator.events import (
    Approve,
    CreateDraft,
    End,
    OperatorCommand,
    Pause,
    Publish,
    Reconcile,
    Reject,
    ReplayDeadLetters,
    Resume,
    Rollback,
    Schedule,
    Settle,
    Submit,
    TargetScope,
    Validate,
)
from harness.scenario import ScopeSpec, StepSpec


def target_scope(spec: ScopeSpec) -> TargetScope:
    return TargetScope(tuple(spec.channels), tuple(spec.regions), tuple(spec.stores))


def operator_event(step: StepSpec, promotions: Mapping[str, Promotion]) -> OperatorCommand:
    promo = step.promo or ""
    action = step.action
    if action == "create":
        return CreateDraft(promotions[promo])
    if action == "publish":
        return Publish(promo, target_scope(step.scope))
    if action == "rollback":
        return Rollback(promo, target_scope(step.scope), deadline=step.deadline)
    if action == "schedule":
        return Schedule(promo, float(step.publish_at or 0.0), target_scope(step.scope))
    if action == "pause":
        return Pause(promo, step.channel or "")
    if action == "resume":
        return Resume(promo, step.channel or "")
    if action == "reject":
        return Reject(promo, step.reason)
    if action == "replay":
        return ReplayDeadLetters(step.promo)
    simple = {
        "submit": Submit,
        "validate": Validate,
        "approve": Approve,
        "end": End,
        "settle": Settle,
        "reconcile": Reconcile,
    }
    return simple[action](promo)
