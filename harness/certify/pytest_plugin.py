"""A pytest plugin: run the adapter certification inside a team's own test suite.

``pytest -p harness.certify.pytest_plugin --promoharness-certify URL
--promoharness-channel pos [--promoharness-token T] [--promoharness-level basic]``
adds one test per check (``promoharness-certify::<check>``). The certification runs once,
at the first of those tests; each test then passes or fails with its check's evidence.
Without ``--promoharness-certify`` the plugin adds nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from harness.certify.base import CheckResult, Settings
from harness.certify.runner import CHECKS, Certificate, run_certification

_CERT = pytest.StashKey[Certificate | BaseException]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("promoharness", "promoharness channel adapter certification")
    group.addoption(
        "--promoharness-certify",
        metavar="URL",
        default=None,
        help="Certify the channel adapter at URL (one test per check).",
    )
    group.addoption(
        "--promoharness-channel", default=None, help="pos | ecommerce | loyalty | marketplace"
    )
    group.addoption("--promoharness-token", default="", help="Bearer token of the adapter.")
    group.addoption("--promoharness-level", default="basic", help="basic | full")
    group.addoption(
        "--promoharness-latency-seconds",
        type=float,
        default=None,
        help="Override the latency check's duration (seconds).",
    )


class CheckFailed(Exception):
    """A certification check failed; the message is its evidence."""


class CertifyItem(pytest.Item):
    """One certification check as a test."""

    def __init__(self, *, check: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check = check

    def _certificate(self) -> Certificate:
        config = self.config
        found = config.stash.get(_CERT, None)
        if found is None:
            opt = config.getoption
            try:
                settings = Settings.for_level(
                    opt("--promoharness-level"),
                    latency_seconds=opt("--promoharness-latency-seconds"),
                )
                found = asyncio.run(
                    run_certification(
                        opt("--promoharness-certify"),
                        opt("--promoharness-channel"),
                        token=opt("--promoharness-token"),
                        settings=settings,
                    )
                )
            except Exception as exc:
                found = exc
            config.stash[_CERT] = found
        if isinstance(found, BaseException):
            raise found
        return found

    def runtest(self) -> None:
        cert = self._certificate()
        result: CheckResult = next(r for r in cert.results if r.name == self.check)
        self.user_properties.append(("evidence", "\n".join(result.evidence)))
        if not result.passed:
            lines = result.failures + [f"{m['case']}: {m['diff']}" for m in result.mismatches]
            raise CheckFailed("\n".join(lines))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, CheckFailed):
            return f"certification check {self.check!r} failed:\n{excinfo.value}"
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[str, int | None, str]:
        return "promoharness-certify", None, f"certify::{self.check}"


class CertifyCollector(pytest.Collector):
    """The checks of the certification, as a collector of :class:`CertifyItem`."""

    def collect(self) -> Iterator[CertifyItem]:
        for name in CHECKS:
            yield CertifyItem.from_parent(self, name=name, check=name)


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--promoharness-certify") and not config.getoption(
        "--promoharness-channel"
    ):
        raise pytest.UsageError("--promoharness-certify needs --promoharness-channel")


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    if not config.getoption("--promoharness-certify"):
        return
    collector = CertifyCollector.from_parent(session, name="promoharness-certify")
    items.extend(collector.collect())
