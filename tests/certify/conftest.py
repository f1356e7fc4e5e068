"""Fixtures for the certification kit's tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from certify_support import TOKEN, load_adapter, serve_in_thread


@pytest.fixture
def adapter_url() -> Iterator[Callable[[str], str]]:
    """``adapter_url("reference_pos")`` serves a fresh instance and returns its URL."""
    stops: list[Callable[[], None]] = []

    def start(name: str) -> str:
        url, stop = serve_in_thread(load_adapter(name).create_app(TOKEN))
        stops.append(stop)
        return url

    yield start
    for stop in stops:
        stop()
