"""The live dashboard in a real browser: Debian's Chromium driven by Playwright.

A stack (simulators + LiveRuntime + API) runs in-process on a background event loop; the
browser opens ``/dashboard``, types a key, publishes from the page and watches the store
heatmap fill, rolls back one region through the confirmation dialog and watches only
that region revert, and shows the API's refusal of a viewer's action and of an unknown
key. Screenshots go to ``reports/dashboard/``. Without ``/usr/bin/chromium`` (apt package
``chromium``) or the ``playwright`` pip package the tests FAIL, they never skip.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from harness.scenario import load_scenario
from harness.stack import Stack, start_stack
from tests.service.live_stack import LoopThread

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCENARIO = Path(__file__).with_name("dashboard.yaml")
SHOTS = Path(__file__).resolve().parents[2] / "reports" / "dashboard"
SPEED = 5.0
WAIT_MS = 20_000
PROMO = "FLASH-1"
T = TypeVar("T")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    loop = LoopThread()
    state = tmp_path_factory.mktemp("dashboard") / "state.db"
    running = loop.run(start_stack(load_scenario(SCENARIO), state=state, speed=SPEED))
    try:
        yield running
    finally:
        loop.run(running.stop())
        loop.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the dashboard tests need Debian's Chromium "
            "(apt-get install -y chromium)",
            pytrace=False,
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the dashboard tests need the 'playwright' pip package", pytrace=False)
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    tab = context.new_page()
    tab.set_default_timeout(WAIT_MS)
    try:
        yield tab
    finally:
        context.close()


def _client(stack: Stack, key: str) -> httpx.Client:
    return httpx.Client(base_url=stack.api_url, headers={"X-API-Key": key}, timeout=10.0)


def _approved(stack: Stack, promo: str) -> None:
    """Create, submit, validate (the simulated ERP answers) and approve ``promo``."""
    body = {
        "id": promo,
        "name": "Flash sale: 10% off everything",
        "validity": {
            "start": "2026-11-28T00:00:00",
            "end": "2026-11-29T00:00:00",
            "timezone": "America/New_York",
        },
        "scope": {"channels": ["pos", "ecommerce", "loyalty"]},
        "benefit": {"type": "percent_off", "percent": 10},
    }
    with _client(stack, "merch-demo-key") as merch:
        merch.post("/v1/promotions", json=body).raise_for_status()
        merch.post(f"/v1/promotions/{promo}/submit").raise_for_status()
        merch.post(f"/v1/promotions/{promo}/validate").raise_for_status()
    with _client(stack, "viewer-demo-key") as viewer:
        for _ in range(200):
            state = viewer.get(f"/v1/promotions/{promo}?endpoints=false").json()["state"]
            if state == "validated":
                break
            threading.Event().wait(0.05)
        assert state == "validated"
    with _client(stack, "approver-demo-key") as approver:
        approver.post(f"/v1/promotions/{promo}/approve").raise_for_status()


def _checkouts(stack: Stack, stores: list[str]) -> None:
    """Shoppers buy a basket at each store (sales and discount for the revenue chart)."""
    product = stack.world.estate.catalog[0]
    basket = {"lines": [product.to_line(2).model_dump(mode="json")]}
    with httpx.Client(base_url=stack.sim_url, timeout=10.0) as sim:
        for store in stores:
            r = sim.post(f"/stores/{store}/price", params={"checkout": "true"}, json=basket)
            r.raise_for_status()


def _use_key(page: Any, key: str) -> None:
    page.fill("#api-key", key)
    page.click("#key-save")


def _confirm(page: Any) -> None:
    """Accept the page's <dialog> confirmation."""
    page.wait_for_selector("#confirm[open]")
    page.click("#confirm-ok")


def _cells(page: Any, selector: str) -> int:
    return int(page.locator(f"#heatmap .cell{selector}").count())


def _shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name), full_page=True)


def test_page_without_key_asks_for_one_and_unknown_key_is_refused(stack: Stack, page: Any) -> None:
    page.goto(f"{stack.api_url}/dashboard")
    assert page.title() == "promoharness · live operations"
    page.wait_for_selector("#banner:has-text('Enter an API key')")
    _use_key(page, "not-a-real-key")
    page.wait_for_selector("#banner:has-text('401')")
    assert "unknown API key" in page.inner_text("#banner")
    _shot(page, "01-unknown-key-refused.png")


def test_publish_fill_rollback_region_and_viewer_refusal(stack: Stack, page: Any) -> None:
    _approved(stack, PROMO)
    page.goto(f"{stack.api_url}/dashboard")
    _use_key(page, "operator-demo-key")
    page.click(f"#promo-list tr[data-promo='{PROMO}']")
    page.wait_for_selector("#whoami:has-text('operator')")
    page.wait_for_selector("#heatmap .group[data-group='east']")
    assert _cells(page, "[data-channel='pos']") == 60
    assert _cells(page, "[data-cat='applied']") == 0

    # Publish from the page, through the confirmation dialog; the heatmap fills.
    page.click("#act-publish")
    _confirm(page)
    page.wait_for_selector("#action-result.ok")
    page.wait_for_function(
        "document.querySelectorAll(\"#heatmap .cell[data-channel='pos'][data-cat='applied']\")"
        ".length === 60",
        timeout=WAIT_MS,
    )
    page.wait_for_selector("#promo-state:has-text('active')")
    _checkouts(stack, ["S0001", "S0002", "S0003", "S0004"])
    page.wait_for_selector("#chart-sales path", state="attached")
    page.wait_for_selector("#chart-coverage path", state="attached")
    _shot(page, "02-published-all-applied.png")

    # Roll back region east from the page: its stores revert, the others stay applied.
    east = _cells(page, "[data-region='east']")
    assert east > 0
    page.select_option("#act-region", "east")
    page.click("#act-rollback-region")
    _confirm(page)
    page.wait_for_selector("#action-result.ok")
    page.wait_for_function(
        "document.querySelectorAll(\"#heatmap .cell[data-region='east'][data-cat='revoked']\")"
        f".length === {east}",
        timeout=WAIT_MS,
    )
    others = _cells(page, "[data-channel='pos']:not([data-region='east'])")
    assert _cells(page, "[data-channel='pos']:not([data-region='east'])[data-cat='applied']") == (
        others
    )
    assert _cells(page, "[data-channel='ecommerce'][data-cat='applied']") == 1
    assert page.locator("#audit td", has_text="rollback").count() >= 1
    _shot(page, "03-region-east-rolled-back.png")

    # A viewer may watch but not act: the page shows the API's 403 and nothing changes.
    _use_key(page, "viewer-demo-key")
    page.wait_for_selector("#whoami:has-text('viewer')")
    page.select_option("#act-channel", "pos")
    page.click("#act-pause")
    _confirm(page)
    page.wait_for_selector("#action-result.error:has-text('403')")
    assert "'operator'" in page.inner_text("#action-result")
    page.wait_for_selector("#banner:has-text('403')")
    assert _cells(page, "[data-region='east'][data-cat='revoked']") == east
    _shot(page, "04-viewer-refused.png")


def test_cancelled_dialog_sends_nothing(stack: Stack, page: Any) -> None:
    _approved(stack, "FLASH-2")
    page.goto(f"{stack.api_url}/dashboard")
    _use_key(page, "operator-demo-key")
    page.click("#promo-list tr[data-promo='FLASH-2']")
    page.wait_for_selector("#promo-title:has-text('FLASH-2')")
    with _client(stack, "viewer-demo-key") as viewer:
        before = len(viewer.get("/v1/audit").json()["records"])
        page.click("#act-rollback-channel")
        page.wait_for_selector("#confirm[open]")
        page.click("#confirm-cancel")
        page.wait_for_selector("#action-result:has-text('Cancelled')")
        kinds = [r["kind"] for r in viewer.get("/v1/audit").json()["records"][before:]]
    assert "rollback" not in kinds
