"""Prometheus metrics of one app: HTTP traffic, and the runtime's own counters as gauges.

A registry per app, never the process-wide default: tests and a multi-app process would
otherwise collide on metric names.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from harness.service.auth import Principal
from harness.service.deps import authenticated
from harness.service.models import AUTH_ERRORS

__all__ = ["ServiceMetrics", "router"]

PREFIX = "promoharness"
# Sub-millisecond to multi-second: status reads sit at the low end, a publish of a
# 600-store estate (journalled in one transaction) at the high end.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


def _metric_name(key: str) -> str:
    return f"{PREFIX}_runtime_{re.sub(r'[^a-zA-Z0-9_]', '_', key)}"


class _RuntimeCollector(Collector):
    """Reads ``stats()`` at scrape time, so the gauges are never stale or pushed."""

    def __init__(self, stats: Callable[[], dict[str, float]]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        for key, value in sorted(self._stats().items()):
            yield GaugeMetricFamily(
                _metric_name(key), f"Runtime statistic '{key}'", value=float(value)
            )

    def describe(self) -> Iterator[Metric]:
        # Names depend on what the runtime reports: nothing to pre-declare (and
        # describing would call stats() at registration).
        return iter(())


class ServiceMetrics:
    def __init__(self, stats: Callable[[], dict[str, float]]) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.requests = Counter(
            f"{PREFIX}_http_requests",
            "HTTP requests by route template, method and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            f"{PREFIX}_http_request_duration_seconds",
            "HTTP request latency by route template and method",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_RuntimeCollector(stats))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


router = APIRouter(tags=["operations"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text"},
        401: AUTH_ERRORS[401],
        429: AUTH_ERRORS[429],
    },
    summary="Prometheus metrics (any key)",
)
async def metrics(request: Request, _: Annotated[Principal, Depends(authenticated)]) -> Response:
    body = request.app.state.metrics.exposition()
    return Response(body, media_type=CONTENT_TYPE_LATEST)
