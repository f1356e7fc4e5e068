"""Pricing commands: the canonical promotion's schema, pricing a basket, the dialects."""

from __future__ import annotations

import datetime as dt
import json
import sys
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from harness.cli.common import app, console
from harness.inputs import InputError, load_model


class SchemaName(StrEnum):
    promotion = "promotion"
    basket = "basket"


def example_path(name: str) -> Path:
    """A file shipped with the package under harness/examples (works from a wheel too)."""
    return Path(str(resources.files("harness") / "examples" / name))


def parse_instant(text: str | None) -> dt.datetime:
    if text is None:
        return dt.datetime.now(dt.UTC)
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"not an ISO 8601 date-time: {text!r}", field="--at") from None
    if value.tzinfo is None:
        raise InputError(f"give an offset or Z, e.g. {text}Z or {text}+01:00", field="--at")
    return value


@app.command()
def schema(name: Annotated[SchemaName, typer.Argument(help="Which document.")]) -> None:
    """Print the JSON Schema of a canonical promotion or of a basket."""
    if name is SchemaName.promotion:
        from harness.domain.promotion import promotion_json_schema

        document: dict[str, Any] = promotion_json_schema()
    else:
        from harness.domain.basket import Basket

        document = Basket.model_json_schema()
    sys.stdout.write(json.dumps(document, indent=2) + "\n")


def _load_promotions(path: Path) -> list[Any]:
    from pydantic import TypeAdapter

    from harness.domain.promotion import Promotion
    from harness.inputs import read_document, validate_data

    data, lines = read_document(path)
    if isinstance(data, dict):
        data, lines = [data], {(0, *k): v for k, v in lines.items()} | {(): 1}
    return validate_data(TypeAdapter(list[Promotion]), data, path, lines)


@app.command()
def price(
    basket: Annotated[Path | None, typer.Argument(help="Basket file (JSON/YAML).")] = None,
    promotions: Annotated[
        Path | None, typer.Argument(help="Promotions file: one promotion or a list.")
    ] = None,
    channel: Annotated[str, typer.Option(help="pos, ecommerce, loyalty or marketplace.")] = "pos",
    store: Annotated[
        str | None, typer.Option(help="Store id, for store-scoped promotions.")
    ] = None,
    region: Annotated[str | None, typer.Option(help="The store's region.")] = None,
    tz: Annotated[str, typer.Option("--tz", help="The store's IANA time zone.")] = "Europe/Paris",
    at: Annotated[
        str | None, typer.Option(help="Instant to price at, ISO 8601 with offset. Default: now.")
    ] = None,
    dialect: Annotated[
        str, typer.Option(help="Comma-separated channel dialects (see `dialects`).")
    ] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print the receipt as JSON.")] = False,
) -> None:
    """Price a basket under a set of promotions and print the receipt.

    Without files it prices the shipped example basket and promotions.
    """
    from harness.domain.basket import Basket
    from harness.domain.dialects import parse_dialects
    from harness.domain.pricing import StoreContext, price_basket
    from harness.domain.promotion import CHANNELS

    if channel not in CHANNELS:
        raise InputError(
            f"unknown channel {channel!r}; one of {', '.join(CHANNELS)}", field="--channel"
        )
    basket_path = basket or example_path("basket.json")
    promo_path = promotions or example_path("promotions.json")
    parsed_basket = load_model(Basket, basket_path)
    promos = _load_promotions(promo_path)
    try:
        chosen = parse_dialects(dialect)
    except ValueError as exc:
        raise InputError(str(exc), field="--dialect") from None
    try:
        context = StoreContext(id=store, region=region, timezone=tz)
        from zoneinfo import ZoneInfo

        ZoneInfo(tz)
    except Exception:
        raise InputError(f"unknown IANA time zone {tz!r}", field="--tz") from None
    receipt = price_basket(
        parsed_basket, promos, channel=channel, at=parse_instant(at), store=context, dialect=chosen
    )
    if as_json:
        sys.stdout.write(receipt.model_dump_json(indent=2) + "\n")
        return
    _print_receipt(receipt)


def _print_receipt(receipt: Any) -> None:
    table = Table(
        title=f"Receipt — channel {receipt.channel}"
        + (f", store {receipt.store}" if receipt.store else "")
        + f" ({receipt.tax_mode} prices)"
    )
    for column in ("SKU", "Qty", "Unit", "List", "Discounts", "Amount", "Tax"):
        table.add_column(column, justify="left" if column in ("SKU", "Discounts") else "right")
    for line in receipt.lines:
        discounts = ", ".join(f"{d.promo}@{d.version} -{d.amount}" for d in line.discounts)
        table.add_row(
            line.sku,
            str(line.quantity),
            str(line.unit_price),
            str(line.list_amount),
            discounts or "—",
            str(line.amount),
            str(line.tax),
        )
    console.print(table)
    console.print(
        f"Subtotal {receipt.subtotal}   Discount -{receipt.discount_total}   "
        f"Tax {receipt.tax_total}   [bold]Total {receipt.total}[/bold]"
        + (f"   Points {receipt.points}" if receipt.points else "")
    )
    if receipt.applied:
        console.print("Applied: " + ", ".join(receipt.applied))
    if receipt.dialects:
        console.print("Dialects: " + ", ".join(receipt.dialects))


@app.command()
def dialects() -> None:
    """List the named pricing dialects channels can show."""
    from harness.domain.dialects import DIALECT_DESCRIPTIONS

    table = Table(title="Pricing dialects")
    table.add_column("name")
    table.add_column("what the channel does")
    for name, text in DIALECT_DESCRIPTIONS.items():
        table.add_row(name, text)
    console.print(table)
