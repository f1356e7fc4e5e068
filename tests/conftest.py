"""How the suite shares the pytest-xdist workers (``--dist loadgroup`` in pyproject).

Each module runs whole on one worker, as ``--dist loadfile`` would have it: its
module-scoped servers start once, and tests that share one never race across workers.
A module whose tests share nothing (each a full run of its own) sets
``SPREAD_OVER_WORKERS = True``: its tests then go one by one to whichever worker is free,
so one long module no longer keeps a single worker busy to the end while the other idles.
"""

from __future__ import annotations

import pytest


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups into the node ids
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("xdist_group") is not None:
            continue
        module = getattr(item, "module", None)
        if getattr(module, "SPREAD_OVER_WORKERS", False):
            continue
        item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::", 1)[0]))
