"""The live operations dashboard: its page, its static assets and its read-only JSON.

``GET /dashboard`` serves a self-contained page (``harness/service/static/``: HTML, one
dependency-free script, one stylesheet — no CDN, no fonts). The page itself is public;
every data call it makes carries the API key the user typed (header ``X-API-Key``), to
the existing routes (``/v1/promotions``, the lifecycle commands) and to these, which any
key may read:

* ``GET /v1/dashboard/whoami`` — the key's principal (name, role);
* ``GET /v1/dashboard/endpoints`` — the estate's endpoints with channel and region (the
  heatmap's layout), from the orchestrator's inventory;
* ``GET /v1/dashboard/promotions/{promo}/series`` — coverage per channel over time,
  retries and dead letters per second, the recent audit trail (the runtime's records);
* ``GET /v1/dashboard/sales`` — cumulative sales and discount granted, read server-side
  from the simulators' ``/truth`` so the browser talks to one origin only.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import aiohttp
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse

from harness.domain.promotion import IDENT_PATTERN
from harness.orchestrator.commands import WriteRecord
from harness.service.auth import Principal
from harness.service.dashboard_series import PromoSeries, SalesSeries
from harness.service.deps import ServiceState, authenticated, service_state
from harness.service.models import AUTH_ERRORS, NOT_FOUND
from harness.service.views import AUDIT_CHUNK

__all__ = ["STATIC_DIR", "DashboardState", "router"]

STATIC_DIR = Path(__file__).with_name("static")
_ASSETS = {
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
}
TRUTH_TIMEOUT = 2.0  # wall seconds for one read of the simulators' ground truth
TRUTH_PAGE = 20_000

router = APIRouter(responses=AUTH_ERRORS)
State = Annotated[ServiceState, Depends(service_state)]
Reader = Annotated[Principal, Depends(authenticated)]
PromoId = Annotated[str, PathParam(pattern=IDENT_PATTERN, description="The promotion's id.")]


@dataclass
class DashboardState:
    """Per-app caches: the folded series and how far into each log they have read."""

    cursor: int = 0  # records of the runtime's log folded so far
    series: dict[str, PromoSeries] = field(default_factory=dict)
    sales: SalesSeries = field(default_factory=SalesSeries)
    sales_error: str = ""
    inventory: list[dict[str, str]] | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def fold(self, runtime: Any) -> None:
        """Read the runtime's records past the cursor into the per-promotion series."""
        while True:
            chunk = runtime.records(self.cursor, AUDIT_CHUNK)
            self.cursor += len(chunk)
            for r in chunk:
                if r.promo:
                    series = self.series.get(r.promo)
                    if series is None:
                        series = self.series[r.promo] = PromoSeries()
                    series.add(r)
            if len(chunk) < AUDIT_CHUNK:
                return

    async def pull_truth(self, base_url: str | None) -> None:
        """Fold the simulators' new ground-truth records (sales, discounts) in."""
        if not base_url:
            self.sales_error = "no simulators attached to this runtime"
            return
        async with self.lock:  # two polls at once must not fold the same page twice
            try:
                timeout = aiohttp.ClientTimeout(total=TRUTH_TIMEOUT)
                async with aiohttp.ClientSession(timeout=timeout) as session:
                    while True:
                        url = f"{base_url}/truth"
                        params = {"since": self.sales.cursor, "limit": TRUTH_PAGE}
                        async with session.get(url, params=params) as resp:
                            resp.raise_for_status()
                            page = await resp.json()
                        for r in page["records"]:
                            self.sales.add(r)
                        # Opaque: an int from one estate, "a.b" from a sharded one's front.
                        self.sales.cursor = page["next"]
                        if len(page["records"]) < TRUTH_PAGE:
                            break
                self.sales_error = ""
            except (aiohttp.ClientError, TimeoutError, ValueError, KeyError) as exc:
                self.sales_error = f"simulators unreachable: {type(exc).__name__}"


def _board(request: Request) -> DashboardState:
    board = getattr(request.app.state, "dashboard", None)
    if board is None:
        board = request.app.state.dashboard = DashboardState()
    return board  # type: ignore[no-any-return]


# --- the page ------------------------------------------------------------------------------


@router.get("/dashboard", include_in_schema=False)
async def page() -> FileResponse:
    return FileResponse(STATIC_DIR / "dashboard.html", media_type="text/html; charset=utf-8")


@router.get("/dashboard/static/{name}", include_in_schema=False)
async def asset(name: str) -> FileResponse:
    media = _ASSETS.get(name)
    if media is None:  # a fixed list: no path from the URL ever reaches the file system
        raise HTTPException(404, detail="no such asset")
    return FileResponse(STATIC_DIR / name, media_type=media)


# --- read-only JSON --------------------------------------------------------------------------


@router.get("/v1/dashboard/whoami", tags=["dashboard"], summary="The key's principal")
async def whoami(who: Reader) -> dict[str, Any]:
    return {"name": who.name, "role": who.role, "channel": who.channel}


@router.get(
    "/v1/dashboard/endpoints",
    tags=["dashboard"],
    summary="Every endpoint with its channel and region (the heatmap layout)",
)
async def endpoints(request: Request, state: State, _: Reader) -> dict[str, Any]:
    board = _board(request)
    if board.inventory is None:
        board.inventory = [
            {
                "endpoint": c.record.endpoint,
                "channel": c.record.channel,
                "region": c.record.region,
            }
            for c in state.runtime.orchestrator.endpoint_records(0.0)
            if isinstance(c, WriteRecord) and c.record.kind == "endpoint"
        ]
    inventory = board.inventory
    regions = sorted({e["region"] for e in inventory if e["channel"] == "pos" and e["region"]})
    channels = sorted({e["channel"] for e in inventory})
    return {"endpoints": inventory, "regions": regions, "channels": channels}


@router.get(
    "/v1/dashboard/promotions/{promo}/series",
    tags=["dashboard"],
    responses={404: NOT_FOUND},
    summary="Coverage per channel, retries and dead letters per second, recent audit",
)
async def series(
    promo: PromoId,
    request: Request,
    state: State,
    _: Reader,
    audit: Annotated[int, Query(ge=0, le=200, description="Audit records to return")] = 30,
) -> dict[str, Any]:
    runtime = state.runtime
    runtime.orchestrator.status(promo)  # UnknownPromotion -> 404
    board = _board(request)
    board.fold(runtime)
    found = board.series.get(promo) or PromoSeries()
    return {"promo": promo, **found.to_json(runtime.now(), audit)}


@router.get(
    "/v1/dashboard/sales",
    tags=["dashboard"],
    summary="Cumulative sales and discount granted (simulators' ground truth)",
)
async def sales(
    request: Request,
    state: State,
    _: Reader,
    promo: Annotated[str | None, Query(pattern=IDENT_PATTERN)] = None,
) -> dict[str, Any]:
    board = _board(request)
    directory = getattr(state.runtime, "endpoints", None)
    await board.pull_truth(getattr(directory, "base_url", None))
    body = board.sales.to_json(promo, state.runtime.now())
    return {"promo": promo, "error": board.sales_error or None, **body}
