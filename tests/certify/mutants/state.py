"""Mutants that keep the wrong state: idempotency, versions, revokes of each benefit type."""

from __future__ import annotations

import random
from typing import Any

from mutant_kit import Intercept, Mutant, pos, web

from simulators.endpoint import Request
from simulators.pos import PosStore


class ForgetsTombstone(PosStore):
    """A revoke deletes the promotion and its version history: a late apply resurrects it."""

    def _revoke(self, r: Request) -> Any:
        changes = super()._revoke(r)
        self._newest.pop(r.promo, None)
        return changes


def ignores_revoke_of(kind: str) -> type[PosStore]:
    """A revoke handler that only knows some benefit types: others stay live (answered ok)."""

    class IgnoresRevoke(PosStore):
        def _revoke(self, r: Request) -> Any:
            payload = self._payloads.get(r.promo)
            if payload is not None and payload.benefit.type == kind:
                return []
            return super()._revoke(r)

    return IgnoresRevoke


def _outcome(old: str, new: str) -> Any:
    def rewrite(method: str, path: str, body: bytes, status: int, answer: Any) -> Any:
        if path == "/promotions" and isinstance(answer, dict) and answer.get("outcome") == old:
            answer["outcome"] = new
        return answer

    return rewrite


def _preloaded() -> Any:
    """A POS adapter that ships holding a demo promotion (left from a smoke test)."""
    from harness.certify.probes import probe_promotion

    app, store = pos()
    demo = probe_promotion("DEMO-welcome", 1, "1.00", "demo")
    d = Request("demo:1:apply", "demo:1:apply", "apply", demo.id, 1, 1, demo)
    store.complete(d, store.plan(d, 0.0, random.Random(0)), 0.0)
    return app


REVOKED = "after revoking the {} promotion"
MUTANTS = [
    Mutant(
        "not-idempotent",
        "a replayed delivery is applied again",
        "pos",
        "idempotency",
        "after the replay",
        lambda: pos(idempotent=False)[0],
    ),
    Mutant(
        "replay-says-stale",
        "a replay is answered outcome 'stale', not 'duplicate'",
        "pos",
        "idempotency",
        "expected 'duplicate'",
        lambda: Intercept(pos()[0], rewrite=_outcome("duplicate", "stale")),
    ),
    Mutant(
        "accepts-stale",
        "an older version arriving late replaces the newer one",
        "ecommerce",
        "ordering",
        "still v2",
        lambda: web(accept_stale=True),
    ),
    Mutant(
        "stale-says-ok",
        "a stale version is answered outcome 'ok'",
        "pos",
        "ordering",
        "expected 'stale'",
        lambda: Intercept(pos()[0], rewrite=_outcome("stale", "ok")),
    ),
    Mutant(
        "forgets-tombstone",
        "a revoke forgets the version: a late apply resurrects",
        "pos",
        "ordering",
        "still revoked",
        lambda: pos(model_cls=ForgetsTombstone)[0],
    ),
    Mutant(
        "keeps-after-revoke",
        "revokes acked but never applied",
        "ecommerce",
        "deactivation",
        REVOKED.format("bundle_price"),
        lambda: web(keep_after_revoke=True),
    ),
    *(
        Mutant(
            f"ignores-revoke-{kind.replace('_', '-')}",
            f"the revoke of a {kind} promotion is answered ok and ignored",
            "pos",
            "deactivation",
            REVOKED.format(kind),
            lambda kind=kind: pos(model_cls=ignores_revoke_of(kind))[0],
        )
        for kind in ("bundle_price", "buy_x_get_y", "tiered", "fixed_price", "points_multiplier")
    ),
    Mutant(
        "ships-demo-promotions",
        "the adapter starts holding a demo promotion",
        "pos",
        "preflight",
        "already holds 1 promotion",
        _preloaded,
    ),
]
