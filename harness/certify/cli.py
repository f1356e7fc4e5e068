"""``promoharness contract CHANNEL`` and ``promoharness certify URL`` (a Typer app).

Mount with ``app.add_typer(certify_app)`` or register its commands; exit codes of
``certify``: 0 every check passed, 1 a check failed, 2 bad input (unknown channel or
level or dialect, unreachable adapter, missing token, an adapter already holding
promotions without ``--clean``: one line on stderr).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path

import typer

from harness.certify.base import CheckResult, Settings
from harness.certify.contract import load_contract
from harness.certify.session import Refused, Unreachable
from harness.domain.dialects import parse_dialects
from harness.domain.promotion import CHANNELS

__all__ = ["certify_app"]

certify_app = typer.Typer(help="Channel adapter contract and certification.", no_args_is_help=True)


def _bad_input(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


@certify_app.command("contract")
def contract(
    channel: str = typer.Argument(..., help="pos | ecommerce | loyalty | marketplace | estate"),
    vectors: bool = typer.Option(
        False,
        "--vectors",
        help="Print the conformance vectors instead (promotions, basket, instant, expected "
        "receipt, per docs/pricing-spec.md) to test an adapter offline.",
    ),
) -> None:
    """Print the channel adapter contract (OpenAPI 3.1 JSON) for CHANNEL, or with `estate`
    the delivery API of the estate `promoharness estate` serves."""
    if channel == "estate":
        from simulators.app_contract import contract_document

        typer.echo(json.dumps(contract_document(), indent=2))
        return
    if channel not in CHANNELS:
        raise _bad_input(f"unknown channel {channel!r}; known: {', '.join(CHANNELS)}")
    if vectors:
        from harness.certify.vectors_build import load_vectors

        typer.echo(load_vectors(channel), nl=False)
        return
    typer.echo(json.dumps(load_contract(channel), indent=2))


@certify_app.command("certify")
def certify(
    url: str = typer.Argument(..., help="The adapter's base URL, e.g. http://127.0.0.1:8081"),
    channel: str = typer.Option(..., "--channel", help="pos | ecommerce | loyalty | marketplace"),
    level: str = typer.Option("basic", "--level", help="basic | full"),
    token: str = typer.Option(
        "",
        "--token",
        envvar="PROMOHARNESS_ADAPTER_TOKEN",
        help="Bearer token the adapter requires.",
    ),
    out: Path | None = typer.Option(None, "--out", help="Folder for the certificate."),
    latency_seconds: float | None = typer.Option(
        None, "--latency-seconds", min=0.2, help="Override the latency check's duration."
    ),
    seed: int | None = typer.Option(None, "--seed", help="Seed of the generated baskets (0)."),
    cases: int | None = typer.Option(
        None, "--cases", min=1, help="Generated baskets to price (basic 48, full 200)."
    ),
    dialect: str = typer.Option(
        "", "--dialect", help="Pricing dialect(s) the channel speaks, e.g. per-unit-distribution."
    ),
    clean: bool = typer.Option(
        False, "--clean", help="Revoke promotions the adapter already holds instead of refusing."
    ),
) -> None:
    """Run the conformance checks against a running adapter and write a certificate."""
    if channel not in CHANNELS:
        raise _bad_input(f"unknown channel {channel!r}; known: {', '.join(CHANNELS)}")
    if not url.startswith(("http://", "https://")):
        raise _bad_input(f"URL must start with http:// or https://, got {url!r}")
    try:
        settings = Settings.for_level(
            level, latency_seconds=latency_seconds, seed=seed, cases=cases, dialect=dialect or None
        )
        parse_dialects(settings.dialect)
    except ValueError as exc:
        raise _bad_input(f"--level/--dialect: {exc}") from None
    from harness.certify.certificate import write_certificate
    from harness.certify.runner import run_certification

    def progress(r: CheckResult) -> None:
        typer.echo(f"  {'PASS' if r.passed else 'FAIL'}  {r.name} ({r.seconds:.1f} s)")

    typer.echo(f"certifying {url} as a {channel} adapter (level {level})")
    try:
        cert = asyncio.run(
            run_certification(
                url, channel, token=token, settings=settings, progress=progress, clean=clean
            )
        )
    except (Unreachable, Refused) as exc:
        raise _bad_input(str(exc)) from None
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    folder = out or Path("reports") / f"certify-{channel}-{stamp}"
    write_certificate(cert, folder)
    verdict = "CERTIFIED" if cert.passed else f"NOT CERTIFIED: failed {', '.join(cert.failed)}"
    typer.echo(f"{verdict}; certificate in {folder}")
    raise typer.Exit(0 if cert.passed else 1)
