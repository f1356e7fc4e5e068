"""The ``promoharness bench`` group, whole: imported when ``bench`` is first used.

Each benchmark registers itself on ``common.bench_app``; ``bench load`` comes from the
load package, which keeps its commands out of ``harness/cli`` (``harness.load.cli``).
"""

from __future__ import annotations

from harness.cli import bench  # noqa: F401  (registers pricing, sim, live, sut, in that order)
from harness.cli.common import bench_app
from harness.load.cli import bench_load_command

__all__ = ["bench_app"]

bench_app.command("load")(bench_load_command)
