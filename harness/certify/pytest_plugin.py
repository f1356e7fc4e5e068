"""A pytest plugin: run the adapter certification inside a team's own test suite.

``pytest -p harness.certify.pytest_plugin --promoharness-certify URL
--promoharness-channel pos [--promoharness-token T] [--promoharness-level basic]``
collects one test item per check (``promoharness.certify.<channel>::<check>``), so ``-k``
selects checks and ``--collect-only`` lists them; junit classnames name the channel. The
certification runs once, at the first selected test, with only the selected checks; each
test then passes or fails with its check's evidence. With ``--junitxml=PATH`` the
certificate (``promoharness-certificate-<channel>.json`` and ``.html``) is written beside
PATH. Without ``--promoharness-certify`` the plugin adds nothing.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.certify.base import CheckResult, Settings
from harness.certify.runner import CHECKS, Certificate, run_certification

_CERT = pytest.StashKey[Certificate | BaseException]()
_SELECTED = pytest.StashKey[list[str]]()


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
    group.addoption("--promoharness-seed", type=int, default=None, help="Seed of the baskets.")
    group.addoption(
        "--promoharness-cases", type=int, default=None, help="Generated baskets to price."
    )
    group.addoption(
        "--promoharness-dialect", default="", help="Pricing dialect(s) the channel speaks."
    )
    group.addoption(
        "--promoharness-clean",
        action="store_true",
        help="Revoke promotions the adapter already holds instead of refusing it.",
    )
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
                    seed=opt("--promoharness-seed"),
                    cases=opt("--promoharness-cases"),
                    dialect=opt("--promoharness-dialect") or None,
                )
                selected = config.stash.get(_SELECTED, None) or list(CHECKS)
                found = asyncio.run(
                    run_certification(
                        opt("--promoharness-certify"),
                        opt("--promoharness-channel"),
                        token=opt("--promoharness-token"),
                        settings=settings,
                        only=selected,
                        clean=opt("--promoharness-clean"),
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


def suite_name(channel: str) -> str:
    return f"promoharness.certify.{channel}"


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


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Collect the checks as items before ``-k`` / ``-m`` deselect (tryfirst), through
    ``genitems`` so they are counted and reported like any collected test."""
    if not config.getoption("--promoharness-certify"):
        return
    name = suite_name(config.getoption("--promoharness-channel"))
    collector = CertifyCollector.from_parent(session, name=name, nodeid=name)
    items.extend(session.genitems(collector))


def pytest_collection_finish(session: pytest.Session) -> None:
    # Only the checks still selected run in the certification.
    session.config.stash[_SELECTED] = [
        item.check for item in session.items if isinstance(item, CertifyItem)
    ]


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Write the certificate beside the junit file, when there is both."""
    config = session.config
    cert = config.stash.get(_CERT, None)
    xmlpath = getattr(config.option, "xmlpath", None)
    if not isinstance(cert, Certificate) or not xmlpath:
        return
    from harness.certify.certificate import certificate_html
    from harness.report.atomic import write_text

    folder = Path(xmlpath).resolve().parent
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"promoharness-certificate-{cert.channel}"
    write_text(folder / f"{stem}.json", json.dumps(cert.to_dict(), indent=2, default=str) + "\n")
    write_text(folder / f"{stem}.html", certificate_html(cert))
