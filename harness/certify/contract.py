"""The channel adapter contract: an OpenAPI 3.1 document generated from ``wire.py``.

``contract_document(channel)`` builds it (``info.version`` = :data:`CONTRACT_VERSION`);
``load_contract(channel)`` returns the snapshot shipped in ``contract/`` (the reviewed,
versioned file; a test keeps it equal to the generated one) and falls back to generating.
``validate(document, schema_name, value)`` checks a JSON value against one of its
component schemas and returns the error messages (empty: valid).

Semantics spelled out in the document (see :data:`DESCRIPTION`): idempotency keys, the
version rule (only newer versions apply; a revoke carries a tombstone version), stale
versions (answered 200 ``stale``, never 409: the orchestrator maps any other 4xx to a
permanent rejection and dead-letters it, while a stale version is a normal race), async
acknowledgements (202 then a webhook to ``X-Callback-URL``) and bearer authentication.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator
from pydantic.json_schema import models_json_schema

from harness.certify.rules import tighten
from harness.certify.wire import (
    CONTRACT_VERSION,
    AckBody,
    DeliveryAnswer,
    DeliveryBody,
    ErrorBody,
    HealthAnswer,
    PriceAnswer,
)
from harness.domain.basket import Basket
from harness.domain.promotion import CHANNELS

__all__ = ["DESCRIPTION", "contract_document", "load_contract", "snapshot_name", "validate"]

DESCRIPTION = """\
What the promoharness orchestrator calls on ONE channel adapter (one base URL).

Authentication: every route requires `Authorization: Bearer <token>`; a missing or wrong
token is answered 401 with an ErrorBody, before the body is read.

Deliveries (`POST /promotions`): the orchestrator sends each promotion version with a
delivery body and the header `Idempotency-Key` (equal to the body's `idempotency_key`).
* Idempotency: all attempts (retries) of one delivery carry the same key. The first
  processing of a key may change state; any later request with that key changes nothing
  and is answered with the first status (200 or 202), outcome `duplicate`. Keys are kept
  at least 24 h.
* Version rule: per promotion, the newest version seen (applied or revoked) wins. An
  `apply` of a version <= the newest seen is stale: it is ignored and answered 200 (or 202)
  with outcome `stale` -- NOT 409, because the orchestrator treats 200 as done while any
  4xx other than 429 is a permanent rejection that is dead-lettered. A `revoke` carries a
  tombstone version (newer than every applied one): it removes the promotion, and a later
  apply of an older version must not resurrect it. After a revoke, prices are list prices.
* Synchronous adapters answer 200 once the change is live. Asynchronous adapters answer
  202 and, once the change is live (or was found stale), POST the acknowledgement webhook
  (`ack`) to the URL given in the delivery's `X-Callback-URL` header (the orchestrator's
  `/v1/callbacks/ack`), with header `X-API-Key` (from the delivery's `X-Callback-Key`
  header when present, else the key the adapter was configured with). A duplicate does
  not send a second webhook. A slow or failing callback receiver must never delay or fail
  deliveries: send webhooks in the background, retry on connection errors.
* 422: the body is malformed or can never succeed (unknown op, apply without payload);
  `detail` says why. 429: throttled, with a `Retry-After` header (seconds). 503: down for
  now, retry later. A 5xx is never the answer to bad input.

Prices (`POST /price`): a Basket in, the Receipt the channel would charge out (plus
`active`, the promotions held as "id@version"), priced at the instant `at` (query, ISO 8601
with offset; default now) under the promotions the adapter holds, by the promoharness
pricing specification 1.0 (docs/pricing-spec.md: numbered rules P1-P10, each with a worked
example). Validity windows are read in the store's zone (see `GET /health`
`store.timezone`) when `store_local`, else in the promotion's zone. Conformance vectors
(promotions, basket, instant, expected receipt) come with the kit:
`promoharness contract CHANNEL --vectors`.

Input rules: the schemas below carry every rule JSON Schema can express; the others (tier
thresholds strictly ascending, validity end after start, a real IANA zone, one line per SKU,
`at` with an offset) are listed in the specification's part V. A delivery or basket that
breaks any of them is answered 422.
"""


def _schemas() -> dict[str, Any]:
    models = [
        (DeliveryBody, "validation"),
        (DeliveryAnswer, "serialization"),
        (ErrorBody, "serialization"),
        (HealthAnswer, "serialization"),
        (Basket, "validation"),
        (PriceAnswer, "serialization"),
        (AckBody, "validation"),
    ]
    _, top = models_json_schema(models, by_alias=True, ref_template="#/components/schemas/{model}")
    return tighten(dict(sorted(top.get("$defs", {}).items())))


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _answer(description: str, schema: str, headers: dict[str, Any] | None = None) -> dict:
    answer: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": _ref(schema)}},
    }
    if headers:
        answer["headers"] = headers
    return answer


_RETRY_AFTER = {"Retry-After": {"schema": {"type": "number"}, "description": "Seconds."}}
_ERRORS = {
    "401": _answer("Missing or wrong bearer token.", "ErrorBody"),
    "422": _answer("Malformed input or a request that can never succeed.", "ErrorBody"),
    "429": _answer("Throttled; retry after Retry-After seconds.", "ErrorBody", _RETRY_AFTER),
    "503": _answer("Unavailable for now; retry later.", "ErrorBody"),
}


def _header(name: str, required: bool, description: str, fmt: str | None = None) -> dict:
    schema: dict[str, Any] = {"type": "string"}
    if fmt:
        schema["format"] = fmt
    return {
        "name": name,
        "in": "header",
        "required": required,
        "description": description,
        "schema": schema,
    }


# The patterns some pydantic releases attach to decimals serialised as strings, and others
# do not: dropped, so the shipped contract does not depend on the installed pydantic.
_DECIMAL_PATTERN_PREFIX = "^(?!^[-+.]*$)[+-]?0*"


def _without_decimal_patterns(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: _without_decimal_patterns(v)
            for k, v in node.items()
            if not (k == "pattern" and str(v).startswith(_DECIMAL_PATTERN_PREFIX))
        }
    if isinstance(node, list):
        return [_without_decimal_patterns(v) for v in node]
    return node


def contract_document(channel: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document for an adapter of ``channel`` (a ValueError if unknown)."""
    return _without_decimal_patterns(_document(channel))


def _document(channel: str) -> dict[str, Any]:
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}; known: {', '.join(CHANNELS)}")
    sync = channel in ("pos", "loyalty")
    style = "usually synchronous (200)" if sync else "usually asynchronous (202 + webhook)"
    delivery = {
        "summary": "Activate or deactivate one promotion version.",
        "operationId": "deliver",
        "parameters": [
            _header("Idempotency-Key", True, "Equal to the body's idempotency_key."),
            _header("X-Callback-URL", False, "Where to POST the ack webhook.", "uri"),
            _header("X-Callback-Key", False, "The X-API-Key to send with the webhook."),
        ],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _ref("DeliveryBody")}},
        },
        "responses": {
            "200": _answer("Applied/revoked now, or stale/duplicate (ignored).", "DeliveryAnswer"),
            "202": _answer(
                "Accepted: takes effect later; the ack webhook follows.", "DeliveryAnswer"
            ),
            **_ERRORS,
        },
    }
    price = {
        "summary": "Price a basket as the channel would charge it.",
        "operationId": "price",
        "parameters": [
            {
                "name": "at",
                "in": "query",
                "required": False,
                "description": "The instant to price at (ISO 8601 with offset); default now.",
                "schema": {"type": "string", "format": "date-time"},
            }
        ],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _ref("Basket")}},
        },
        "responses": {"200": _answer("The receipt.", "PriceAnswer"), **_ERRORS},
    }
    health = {
        "summary": "Liveness, channel and pricing context.",
        "operationId": "health",
        "responses": {"200": _answer("Up.", "HealthAnswer"), "401": _ERRORS["401"]},
    }
    ack = {
        "post": {
            "summary": "The adapter's acknowledgement of an accepted (202) delivery.",
            "description": "POST to the delivery's X-Callback-URL (the orchestrator's "
            "/v1/callbacks/ack) once the change is live, with header X-API-Key.",
            "parameters": [_header("X-API-Key", True, "The orchestrator's callback key.")],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("AckBody")}},
            },
            "responses": {"200": {"description": "Recorded."}},
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"promoharness channel adapter contract ({channel})",
            "version": CONTRACT_VERSION,
            "description": f"Channel `{channel}`: {style}.\n\n{DESCRIPTION}",
        },
        "x-channel": channel,
        "servers": [{"url": "http://127.0.0.1:8080", "description": "The adapter's base URL."}],
        "security": [{"bearer": []}],
        "paths": {
            "/promotions": {"post": delivery},
            "/price": {"post": price},
            "/health": {"get": health},
        },
        "webhooks": {"ack": ack},
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def snapshot_name(channel: str) -> str:
    return f"channel-adapter-{channel}-{CONTRACT_VERSION}.json"


@cache
def _load(channel: str) -> str:
    try:
        return (resources.files("harness.certify") / "contract" / snapshot_name(channel)).read_text(
            encoding="utf-8"
        )
    except (FileNotFoundError, OSError):
        return json.dumps(contract_document(channel))


def load_contract(channel: str) -> dict[str, Any]:
    """The shipped contract of ``channel`` (generated when the snapshot is missing)."""
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}; known: {', '.join(CHANNELS)}")
    return json.loads(_load(channel))


def validate(document: dict[str, Any], schema: str, value: Any) -> list[str]:
    """Messages for every way ``value`` breaks component schema ``schema`` (empty: valid)."""
    root = {"$ref": f"#/components/schemas/{schema}", "components": document["components"]}
    validator = Draft202012Validator(root)
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
    ][:10]
