"""How the suite shares the pytest-xdist workers (``--dist loadgroup`` in pyproject).

Each module runs whole on one worker, as ``--dist loadfile`` would have it: its
module-scoped servers start once, and tests that share one never race across workers.
A module whose tests share nothing (each a full run of its own) sets
``SPREAD_OVER_WORKERS = True``: its tests then go one by one to whichever worker is free.

Order (pyproject turns xdist's own by-test-count order off): the modules that take
longest start first, the rest follow in collection order, and the spread tests come
last, filling whichever worker frees up first, so both stay busy to the end instead of
one finishing a long module alone.
"""

from __future__ import annotations

import pytest

# The longest modules, longest first: per-module wall of a four-worker run (loaded
# machine, 2026-11-30) set against the quiet figures in issue 14 (the SUT systems' three
# live runs at 10x, the CI campaign, the live scope property's six stacks); a module
# missing here only starts later, nothing else.
LONGEST_FIRST = [
    "tests/load/test_attribution_live.py",  # two load runs, 85 and 40 s, one per worker
    "tests/sut/test_sut_systems.py",
    "tests/runtime/test_scenarios.py",
    "tests/load/test_load.py",
    "tests/test_sweep_dask.py",
    "tests/scope/test_scope_live.py",
    "tests/service/test_schemathesis.py",
    "tests/sut/test_broker_fanout.py",
    "tests/sut/test_load_sut.py",
    "tests/certify/test_certify_mutants.py",
    "tests/lab/test_metastable_lab.py",
    "tests/test_compare.py",
    "tests/test_sweep.py",
    "tests/runtime/test_queueing_oracles.py",
    "tests/bench/test_sut_bench.py",
    "tests/certify/test_certify_adapters.py",
    "tests/domain/test_pricing_properties.py",
    "tests/domain/test_pricing_oracle.py",
    "tests/metrics/test_metrics_propagation.py",
    "tests/report/test_pool.py",
    "tests/test_inputs_fuzz.py",
    "tests/test_cli_errors.py",
    "tests/test_cli.py",
    "tests/runtime/test_capacity_fault.py",
    "tests/runtime/test_crash_recovery.py",
    "tests/runtime/test_restart_pending.py",
]


def _module(item: pytest.Item) -> str:
    return item.nodeid.split("::", 1)[0]


def _spread(item: pytest.Item) -> bool:
    return bool(getattr(getattr(item, "module", None), "SPREAD_OVER_WORKERS", False))


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups into the node ids
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {path: i for i, path in enumerate(LONGEST_FIRST)}
    # A stable sort: a module's own tests keep their order (and stay contiguous).
    items.sort(key=lambda it: (rank.get(_module(it), len(rank)), _spread(it)))
    for item in items:
        if item.get_closest_marker("xdist_group") is not None or _spread(item):
            continue
        item.add_marker(pytest.mark.xdist_group(_module(item)))
