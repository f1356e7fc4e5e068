"""The estate's delivery parsing with its payload cache (simulators/apps.py
``parse_delivery``) answers exactly as validating the whole body does: the same body, or
the same validation errors, whatever the cache holds and however the body is written."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from harness.scenario import load_scenario
from simulators.app_delivery import DeliveryBody, PayloadCache, parse_delivery

PROMO = load_scenario("weekend-private-label", []).promotions[0]
PAYLOAD = PROMO.model_dump_json(by_alias=True)
HEAD = {
    "delivery_id": "P1/S0001/1",
    "idempotency_key": "k1",
    "op": "apply",
    "promo": PROMO.id,
    "version": 1,
    "attempt": 1,
}


def runtime_body(head: dict[str, Any], payload: str = PAYLOAD) -> bytes:
    """Written as the live runtime writes it (``LiveRuntime._body``): payload last."""
    text = json.dumps(head, separators=(",", ":"))
    return f'{text[:-1]},"payload":{payload}}}'.encode()


def outcome(parse: Any) -> Any:
    try:
        return ("ok", parse().model_dump())
    except ValidationError as exc:
        return ("422", exc.errors(include_url=False))


def same_as_whole(raw: bytes, cache: PayloadCache) -> None:
    whole = outcome(lambda: DeliveryBody.model_validate_json(raw))
    assert outcome(lambda: parse_delivery(raw, cache)) == whole
    assert outcome(lambda: parse_delivery(raw, cache)) == whole  # and again, warm


def test_a_fan_out_validates_its_payload_once_and_reads_the_same_body() -> None:
    cache = PayloadCache()
    first = parse_delivery(runtime_body(HEAD), cache)
    assert list(cache.values()) == [PROMO]
    second = parse_delivery(runtime_body({**HEAD, "delivery_id": "P1/S0002/1"}), cache)
    assert first.payload == PROMO
    assert second.payload is cache[PAYLOAD.encode()]  # from the cache, not validated again
    assert second == DeliveryBody.model_validate_json(
        runtime_body({**HEAD, "delivery_id": "P1/S0002/1"})
    )


heads = st.fixed_dictionaries(
    {},
    optional={
        "delivery_id": st.one_of(st.text(max_size=12), st.integers()),
        "idempotency_key": st.text(max_size=12),
        "op": st.sampled_from(["apply", "revoke", "other", ',"payload":']),
        "promo": st.text(max_size=12),
        "version": st.one_of(st.integers(-5, 5), st.text(max_size=3)),
        "attempt": st.integers(0, 3),
        "payload": st.one_of(st.none(), st.integers()),  # a duplicate key before the last
        "extra": st.one_of(st.text(max_size=12), st.just({"a": 1, "payload": 2})),
    },
)
payloads = st.sampled_from(
    [
        PAYLOAD,
        "null",
        "1",
        '{"id":"X"}',
        PAYLOAD[:-1],
        PAYLOAD + " ",
        '"x"}',
        PAYLOAD.replace('"', "'", 1),
    ]
)


@settings(max_examples=300, deadline=None)
@given(head=heads, payload=payloads, warm=st.booleans())
def test_any_body_reads_as_its_whole_validation(
    head: dict[str, Any], payload: str, warm: bool
) -> None:
    cache = PayloadCache()
    if warm:  # the cache already holds this payload text (another store's delivery)
        parse_delivery(runtime_body(HEAD, PAYLOAD), cache)
        parse_delivery(runtime_body(HEAD, "null"), cache)
    same_as_whole(runtime_body(head, payload), cache)
    same_as_whole(json.dumps({**head, "payload": json.loads(PAYLOAD)}).encode(), cache)
    same_as_whole(runtime_body(head, payload) + b"x", cache)
    same_as_whole(
        b"{" + runtime_body(head, payload)[1:].replace(b'"payload"', b'"payload" ', 1), cache
    )


def test_the_served_delivery_path_answers_404_422_and_a_json_500() -> None:
    """Through the app as uvicorn calls it (``EstateApp``'s delivery path, ahead of
    FastAPI): an unknown store is a JSON 404, a bad body a 422 naming the field, and an
    error inside a delivery a JSON 500, not a plain-text one."""
    import asyncio

    import httpx

    from harness.runtime.world import build_world
    from simulators.apps import create_sim_app

    world = build_world(load_scenario("weekend-private-label", ["estate.stores=2"]))
    app = create_sim_app(world)

    async def broken(*_args: Any) -> Any:
        raise RuntimeError("a defect in a model")

    async def main() -> None:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://estate") as http:
            ok = await http.post("/stores/S0001/promotions", content=runtime_body(HEAD))
            assert ok.status_code == 200, ok.text
            missing = await http.post("/stores/S9999/promotions", content=runtime_body(HEAD))
            assert (missing.status_code, missing.json()) == (404, {"detail": "unknown endpoint"})
            bad = await http.post(
                "/endpoints/S0001/deliveries", content=runtime_body({**HEAD, "op": "drop"})
            )
            assert bad.status_code == 422
            assert [e["loc"] for e in bad.json()["detail"]] == [["body", "op"]]
            app.state.sim.deliver = broken
            failed = await http.post("/erp/pricebook", content=runtime_body(HEAD))
            assert failed.status_code == 500
            assert failed.json() == {"detail": "Internal Server Error"}

    asyncio.run(main())
