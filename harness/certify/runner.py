"""Run the conformance checks against one adapter and collect a :class:`Certificate`.

``CHECKS`` is the ordered registry (name -> check function); ``run_certification`` opens a
session (GET /health first: :class:`~harness.certify.session.Unreachable` when the adapter
does not answer), runs every check (or the ones named) with a time limit each, and returns
the certificate. A check that raises fails with the exception as evidence.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from harness.certify.base import CheckResult, Ctx, Settings
from harness.certify.checks_api import check_auth, check_contract
from harness.certify.checks_load import (
    check_faults_burst,
    check_faults_slow_callbacks,
    check_latency,
    check_pricing,
)
from harness.certify.checks_state import (
    check_deactivation,
    check_faults_redelivery,
    check_idempotency,
    check_ordering,
)
from harness.certify.session import Session
from harness.certify.wire import CONTRACT_VERSION
from harness.domain.dialects import parse_dialects

__all__ = ["CHECKS", "Certificate", "run_certification"]

Check = Callable[[Ctx], Awaitable[None]]

CHECKS: dict[str, Check] = {
    "contract": check_contract,
    "auth": check_auth,
    "idempotency": check_idempotency,
    "ordering": check_ordering,
    "deactivation": check_deactivation,
    "pricing_reference": check_pricing,
    "faults_slow_callbacks": check_faults_slow_callbacks,
    "faults_redelivery": check_faults_redelivery,
    "faults_burst": check_faults_burst,
    "latency": check_latency,
}
CHECK_TIMEOUT_S = 120.0


def describe(name: str) -> tuple[str, str]:
    """(title, description) of a check, from its docstring."""
    doc = inspect.getdoc(CHECKS[name]) or name
    title = doc.split(":", 1)[0].split("\n", 1)[0]
    return title, " ".join(doc.split())


@dataclass
class Certificate:
    url: str
    channel: str
    level: str
    contract_version: str
    started: str
    seconds: float
    run_id: str
    health: dict[str, Any]
    settings: dict[str, Any]
    results: list[CheckResult] = field(default_factory=list)
    # what the pre-flight revoked (--clean) before the checks ran
    cleaned: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failed(self) -> list[str]:
        return [r.name for r in self.results if not r.passed]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["passed"] = self.passed
        out["failed"] = self.failed
        return out


async def _run_one(name: str, session: Session, settings: Settings) -> CheckResult:
    ctx = Ctx(session, settings, name)
    title, description = describe(name)
    t0 = time.monotonic()
    try:
        await asyncio.wait_for(CHECKS[name](ctx), CHECK_TIMEOUT_S)
    except TimeoutError:
        ctx.fail(f"FAIL: the check did not finish within {CHECK_TIMEOUT_S:g} s")
    except Exception as exc:
        ctx.fail(f"FAIL: {type(exc).__name__}: {exc}")
    failures = list(ctx.failures)
    return CheckResult(
        name,
        title,
        description,
        passed=not ctx.failures and not ctx.mismatches,
        evidence=ctx.evidence,
        failures=failures,
        mismatches=ctx.mismatches,
        seconds=round(time.monotonic() - t0, 3),
    )


async def run_certification(
    url: str,
    channel: str,
    *,
    token: str,
    settings: Settings | None = None,
    only: Sequence[str] | None = None,
    progress: Callable[[CheckResult], None] | None = None,
    clean: bool = False,
) -> Certificate:
    """Certify the adapter at ``url`` for ``channel``; raises Unreachable, ValueError, and
    Refused when the adapter already holds promotions (unless ``clean``: revoke them)."""
    settings = settings or Settings()
    names = list(only) if only else list(CHECKS)
    unknown = [n for n in names if n not in CHECKS]
    if unknown:
        raise ValueError(f"unknown check(s) {', '.join(unknown)}; known: {', '.join(CHECKS)}")
    dialect = parse_dialects(settings.dialect)
    session = Session(url, channel, token, ack_timeout=settings.ack_timeout, dialect=dialect)
    await session.start()
    try:
        cleaned = await session.preflight(clean)
    except BaseException:
        await session.close()
        raise
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    t0 = time.monotonic()
    cert = Certificate(
        url,
        channel,
        settings.level,
        CONTRACT_VERSION,
        started,
        0.0,
        session.run_id,
        session.health,
        asdict(settings),
        cleaned=cleaned,
    )
    try:
        for name in names:
            result = await _run_one(name, session, settings)
            cert.results.append(result)
            if progress is not None:
                progress(result)
    finally:
        await session.close()
    cert.seconds = round(time.monotonic() - t0, 2)
    return cert
