"""The shared live stack (simulators + LiveRuntime + API) for the service tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.service.live_stack import Stack, running_stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("service") / "state.db") as s:
        yield s
