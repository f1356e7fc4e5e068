"""The estate's delivery API as a published contract: OpenAPI 3.1, from the app itself.

``create_sim_app`` declares its FastAPI routes with the answer models below
(``responses=``) and installs ``estate_openapi`` as the app's ``openapi()``, which adds
what FastAPI cannot see: the plain Starlette delivery routes (the hot path), the webhook
an asynchronous endpoint sends, the admin bearer token and the rules in prose
(:data:`DESCRIPTION`). So ``GET /openapi.json`` of a running estate *is* the contract;
``contract_document()`` builds the same document from a one-store estate, and
``promoharness contract estate`` prints it (a test keeps the committed
``harness/certify/contract/estate-<version>.json`` equal to it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from harness.domain.basket import Receipt

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = [
    "CONTRACT_VERSION",
    "DELIVERY_PATHS",
    "DESCRIPTION",
    "contract_document",
    "estate_openapi",
    "snapshot_name",
]

CONTRACT_VERSION = "1.0.0"

# path -> (operationId, summary): the Starlette delivery routes ``apps.py`` adds.
DELIVERY_PATHS: dict[str, tuple[str, str]] = {
    "/endpoints/{endpoint_id}/deliveries": (
        "deliver",
        "Deliver to any endpoint by its id (the listing's delivery_url).",
    ),
    "/stores/{store_id}/promotions": ("deliver_store", "Deliver to one POS store."),
    "/erp/pricebook": ("deliver_erp", "Deliver to the ERP's price book."),
    "/web/promotions": ("deliver_web", "Deliver to the web shop (202, then a webhook)."),
    "/loyalty/promotions": ("deliver_loyalty", "Deliver to the loyalty service."),
    "/marketplace/offers": ("deliver_marketplace", "Deliver to the marketplace (202, polled)."),
}

DESCRIPTION = """\
The simulated retail estate of one promoharness scenario (an ERP, every POS store, a web
shop, a loyalty service, a marketplace), served on 127.0.0.1 for any system that delivers
promotions to it (`promoharness estate SCENARIO`). Everything it decides comes from seeded
models: the same scenario and seed give the same estate, latencies and faults.

**Where to deliver.** `GET /estate/endpoints` lists every endpoint: id, channel, region,
store, time zone, `delivery_url` (`/endpoints/{id}/deliveries`), how it acknowledges
(`in_reply`, `webhook` or `polled`), `realtime` or `batch` and a batch store's pick-up
window. The channel routes (`/stores/{id}/promotions`, `/erp/pricebook`,
`/web/promotions`, `/loyalty/promotions`, `/marketplace/offers`) are the same deliveries.

**The body.** One delivery attempt: `delivery_id`, `idempotency_key`, `op` (`apply` or
`revoke`), `promo`, `version`, `attempt` (1, 2, ... per retry) and, for an apply, the
canonical promotion as `payload`. Unknown extra fields are ignored.

**The answers.**
* 200 `{"outcome":"ok","effect":...}`: done now. `effect` is `applied` (this version is
  now live), `removed` (the revoke took the promotion down) or `ignored` (nothing changed:
  a stale version, a revoke of something not live, a replayed idempotency key).
* 202 `{"outcome":"accepted"}`: takes effect later -- a web shop indexes it and then sends
  a webhook, a batch store picks it up at its next window and then sends a webhook, the
  marketplace activates it and tells nobody (poll `GET /marketplace/offers/{promo}`).
* 429 `{"outcome":"throttled","retry_after":s}` with header `Retry-After` (whole seconds,
  at least 1): over the endpoint's rate limit or API quota (the ERP's).
* 503 `{"outcome":"unavailable","detail":...}`: an outage (a region or endpoint offline,
  a maintenance window) or a full queue; retry later.
* 500 `{"outcome":"error"}`: an injected server error; nothing changed; retry.
* 422: `{"outcome":"rejected","detail":reason}` can never succeed (an apply without a
  payload; at the ERP, a payload naming an unknown SKU, a SKU without a price-book entry,
  an unknown category, region or store -- the ERP's master data refuses it for good); or
  FastAPI's `{"detail":[{"loc":["body",...],"msg":...}]}` for a malformed body.
* 404 `{"detail":"unknown endpoint"}`: no such endpoint (or a store route naming a
  non-store).
* No answer at all: a *hang* (an outage in `hang` mode, or an injected timeout: nothing
  changes) or a *lost reply* (the change happens, the answer never comes: applied but
  never acknowledged). Your client's timeout decides; the estate never answers these
  (when the estate shuts down it answers them 503 `shutting down`).

**Versions.** Per endpoint and promotion the estate keeps the newest version it has seen
(applied or revoked).
* An apply takes effect (`applied`) only when its version is newer than the newest seen;
  an apply of the live version again, or of an older one, is `ignored` -- a late apply can
  neither downgrade nor resurrect a revoked promotion. (Deliberately faulty endpoint
  profiles break this on purpose: `stale-pos` applies stale versions, `legacy-pos` stores
  a second copy of a repeated apply.)
* A revoke takes effect when its version is >= the newest seen: that version becomes the
  tombstone and the live version (if any) is `removed`; a revoke older than the newest
  seen is `ignored`, and so is one for a promotion not live. A revoke usually carries a
  version newer than the applied one.

**Idempotency.** Each endpoint remembers every idempotency key it carried out, for the
whole run. A request with a key it has already carried out changes nothing and gets the
stored answer again: 200 `ignored` for a synchronous endpoint, 202 for an asynchronous
one, and no second webhook. Only requests that got as far as being carried out store
their key: a 429, 503, 500, 422 or hang stores nothing, so its retry is processed afresh.
A retry that arrives while the first attempt is still in service is carried out as a
no-op (`ignored`). (`legacy-pos` is not idempotent on purpose.)

**Asynchronous acknowledgements.** Endpoints listed with `acknowledges: webhook` POST, once
the change took effect (or was found to change nothing), the body
`{"endpoint","promo","version","op","detail":"webhook"}` (webhook `ack` below) to the URL
the system under test declares for that channel with `PUT /admin/callbacks/{channel}`
(body `{"url", "headers"}`; the headers -- an API key, say -- are sent with every
webhook). Connection errors are retried twice; a webhook can be lost or late by the
endpoint's profile. `acknowledges: polled` endpoints send nothing.

**ERP validation.** `POST /erp/validate` with a canonical promotion answers `{"ok",
"reasons"}`: the master-data checks above, inventory readiness and funding (budget left,
a known funding vendor able to cover its share). It goes through the ERP's front door:
429 and 503 like a delivery.

**Time.** Every time the estate reports -- ground-truth `t`, `retry_after`, `Retry-After`,
batch windows -- is in scenario seconds since the estate started; `GET /clock` gives the
current one (`t`), the instant it stands for (`at`) and `speed` (scenario seconds per wall
second: at speed K a client honouring Retry-After waits Retry-After / K seconds).

**Ground truth and faults.** `/truth*` and `/admin/*` require `Authorization: Bearer
<admin token>` (printed when the estate starts): 401 otherwise. `GET /truth` pages the
estate's own record of what happened: `received` (every delivery attempt that reached an
endpoint, with the answer it got: ok, accepted, throttled, unavailable, error, rejected,
hang or lost), `applied`, `removed`, `outage`, `fault`, `sale`, `discount`.
`POST /admin/faults` switches a fault on or off now.
"""


# --- answers ----------------------------------------------------------------------------


class OkAnswer(BaseModel):
    """200: the delivery was carried out now."""

    outcome: Literal["ok"]
    effect: Literal["applied", "removed", "ignored"] = Field(
        description="applied: the version is live now; removed: the revoke took it down; "
        "ignored: nothing changed (stale version, replayed key, nothing live to revoke)."
    )


class AcceptedAnswer(BaseModel):
    """202: takes effect later (a webhook follows, or poll the marketplace)."""

    outcome: Literal["accepted"]


class ThrottledAnswer(BaseModel):
    """429: over the rate limit; the header Retry-After says the same in whole seconds."""

    outcome: Literal["throttled"]
    retry_after: float = Field(gt=0, description="Scenario seconds until a token is free.")


class UnavailableAnswer(BaseModel):
    """503: down for now (outage, maintenance, full queue, shutting down)."""

    outcome: Literal["unavailable"]
    detail: str


class ErrorAnswer(BaseModel):
    """500: an injected server error; nothing changed."""

    outcome: Literal["error"]


class RejectedAnswer(BaseModel):
    """422: the delivery can never succeed (say, the ERP does not know a SKU)."""

    outcome: Literal["rejected"]
    detail: str = Field(min_length=1)


class DetailAnswer(BaseModel):
    """An error with a reason: 401, 404, or a 422 from an admin route."""

    detail: Any


class WebhookBody(BaseModel):
    """What an asynchronous endpoint POSTs to its channel's declared callback URL."""

    endpoint: str = Field(description="The endpoint id (as in the listing).")
    promo: str
    version: int
    op: Literal["apply", "revoke"]
    detail: Literal["webhook"]


class BatchWindow(BaseModel):
    every_seconds: float = Field(description="A batch store picks updates up this often...")
    offset_seconds: float = Field(description="...at these scenario seconds past each period.")


class EndpointRow(BaseModel):
    id: str
    channel: Literal["erp", "pos", "ecommerce", "loyalty", "marketplace"]
    region: str | None
    store: str | None
    timezone: str | None = Field(description="IANA zone (stores, web shop, marketplace).")
    delivery_url: str
    acknowledges: Literal["in_reply", "webhook", "polled"]
    mode: Literal["realtime", "batch"]
    batch_window: BatchWindow | None = Field(default=None, description="Batch stores only.")


class Listing(BaseModel):
    endpoints: list[EndpointRow]


class ClockAnswer(BaseModel):
    t: float = Field(description="Scenario seconds since the estate started.")
    at: str = Field(description="The instant t stands for (ISO 8601 with offset).")
    speed: float = Field(description="Scenario seconds per wall second.")


class TruthRecord(BaseModel):
    """One ground-truth row (the event log's columns)."""

    t: float = Field(description="Scenario seconds.")
    kind: str = Field(description="received, applied, removed, outage, fault, sale, ...")
    promo: str
    version: int
    endpoint: str
    channel: str
    region: str
    attempt: int
    outcome: str = Field(description="received: the answer given (ok, hang, lost, ...).")
    value: float
    detail: str


class TruthPage(BaseModel):
    next: int = Field(description="Pass as ?since= to read on.")
    records: list[TruthRecord]


class InventoryAnswer(BaseModel):
    records: list[TruthRecord]


class ValidateAnswer(BaseModel):
    ok: bool
    reasons: list[str]


class OfferPoll(BaseModel):
    promo: str
    state: Literal["unknown", "pending", "active", "inactive"]
    version: int
    pending_op: Literal["apply", "revoke"] | None
    pending_version: int | None


class PriceAnswer(Receipt):
    at: float = Field(description="Scenario seconds the basket was priced at.")
    endpoint: str
    active: list[str] = Field(description='The promotions the endpoint holds, "id@version".')


class FaultAnswer(BaseModel):
    kind: str
    on: bool
    targets: list[str]


class CallbackAnswer(BaseModel):
    channel: str
    url: str


class AdminEndpoint(BaseModel):
    id: str
    channel: str
    region: str
    capacity: int
    profile: str
    in_flight: int
    queued: int
    offline: bool
    faults: list[str]


class Health(BaseModel):
    ok: bool


def _json(model: type[BaseModel], description: str, **extra: Any) -> dict[str, Any]:
    return {"model": model, "description": description, **extra}


RETRY_AFTER = {
    "Retry-After": {
        "description": "Whole scenario seconds (at least 1).",
        "schema": {"type": "string", "pattern": "^[1-9][0-9]*$"},
    }
}
UNAUTHORIZED = {401: _json(DetailAnswer, "No or wrong `Authorization: Bearer <admin token>`.")}
GATED = {
    429: _json(ThrottledAnswer, "Over the ERP's quota.", headers=RETRY_AFTER),
    503: _json(UnavailableAnswer, "Outage or maintenance."),
}
# ``responses=`` for each FastAPI route of ``apps.py``, by route name.
ROUTE_RESPONSES: dict[str, dict[int | str, dict[str, Any]]] = {
    "price": {
        200: _json(PriceAnswer, "The receipt at the estate's current time."),
        404: _json(DetailAnswer, "No such pricing endpoint."),
    },
    "validate": {200: _json(ValidateAnswer, "The ERP's verdict."), **GATED},
    "poll": {
        200: _json(OfferPoll, "The offer as the marketplace holds it."),
        429: _json(ThrottledAnswer, "Over the marketplace's rate limit.", headers=RETRY_AFTER),
        503: _json(UnavailableAnswer, "Marketplace outage."),
    },
    "clock": {200: _json(ClockAnswer, "The estate's scenario time.")},
    "listing": {200: _json(Listing, "Every delivery endpoint.")},
    "truth": {200: _json(TruthPage, "Ground-truth records from ?since=."), **UNAUTHORIZED},
    "truth_active": {
        200: {
            "description": "endpoint -> {promo: live version}.",
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "additionalProperties": {
                            "type": "object",
                            "additionalProperties": {"type": "integer"},
                        },
                    }
                }
            },
        },
        **UNAUTHORIZED,
    },
    "truth_inventory": {
        200: _json(InventoryAnswer, "Endpoint inventory and scheduled outages (t=0)."),
        **UNAUTHORIZED,
    },
    "faults": {
        200: _json(FaultAnswer, "Switched; the endpoints it hit."),
        422: _json(DetailAnswer, "A missing region, target or rate, or unknown endpoints."),
        **UNAUTHORIZED,
    },
    "callbacks": {
        200: _json(CallbackAnswer, "Webhooks of this channel go there from now on."),
        422: _json(DetailAnswer, "The channel sends no webhooks, or a bad URL."),
        **UNAUTHORIZED,
    },
    "admin_endpoints": {
        200: {
            "description": "Every endpoint's capacity, queue and switched faults.",
            "content": {
                "application/json": {
                    "schema": {
                        "type": "array",
                        "items": {"$ref": "#/components/schemas/AdminEndpoint"},
                    }
                }
            },
        },
        **UNAUTHORIZED,
    },
    "healthz": {200: _json(Health, "Up.")},
}


# --- the document -----------------------------------------------------------------------


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


# FastAPI's 422 for a malformed body, with ``detail`` required (so it cannot pass for a
# rejection without a reason).
INVALID_BODY = {
    "type": "object",
    "required": ["detail"],
    "properties": {
        "detail": {"type": "array", "minItems": 1, "items": _ref("ValidationError")},
    },
}


def _delivery_operation(path: str, operation_id: str, summary: str) -> dict[str, Any]:
    params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in ("endpoint_id", "store_id")
        if "{" + name + "}" in path
    ]
    answer = {
        "200": ("Carried out now; `effect` says what changed.", _ref("OkAnswer")),
        "202": ("Accepted: takes effect later (webhook or poll).", _ref("AcceptedAnswer")),
        "404": ("Unknown endpoint.", _ref("DetailAnswer")),
        "422": (
            "Rejected for good, or a malformed body.",
            {"oneOf": [_ref("RejectedAnswer"), INVALID_BODY]},
        ),
        "429": ("Throttled (rate limit or quota).", _ref("ThrottledAnswer")),
        "500": ("Injected error; nothing changed.", _ref("ErrorAnswer")),
        "503": ("Unavailable (outage, full queue).", _ref("UnavailableAnswer")),
    }
    responses: dict[str, Any] = {}
    for status, (description, schema) in answer.items():
        responses[status] = {"description": description, "content": _content(schema)}
    responses["429"]["headers"] = RETRY_AFTER
    return {
        "summary": summary,
        "operationId": operation_id,
        "tags": ["deliveries"],
        "parameters": params,
        "requestBody": {"required": True, "content": _content(_ref("DeliveryBody"))},
        "responses": responses,
        "x-no-answer": {
            "hang": "An outage in hang mode or an injected timeout: no answer, no change.",
            "lost-reply": "The change happens; the answer never comes.",
        },
    }


def _webhook() -> dict[str, Any]:
    return {
        "post": {
            "summary": "An asynchronous endpoint's acknowledgement.",
            "description": "Sent to the URL declared with PUT /admin/callbacks/{channel}, "
            "with the headers declared there, once an accepted (202) delivery took effect.",
            "operationId": "ack",
            "requestBody": {"required": True, "content": _content(_ref("WebhookBody"))},
            "responses": {"2XX": {"description": "Received (any other answer is a failure)."}},
        }
    }


def estate_openapi(app: FastAPI) -> dict[str, Any]:
    """The contract of ``app`` (a ``create_sim_app`` app), cached on it like FastAPI's."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    from fastapi.openapi.utils import get_openapi
    from pydantic.json_schema import models_json_schema

    from simulators.apps import DeliveryBody

    doc = get_openapi(
        title="promoharness estate",
        version=CONTRACT_VERSION,
        openapi_version="3.1.0",
        description=DESCRIPTION,
        routes=app.routes,
    )
    extra = [
        (DeliveryBody, "validation"),
        (OkAnswer, "serialization"),
        (AcceptedAnswer, "serialization"),
        (RejectedAnswer, "serialization"),
        (ThrottledAnswer, "serialization"),
        (UnavailableAnswer, "serialization"),
        (ErrorAnswer, "serialization"),
        (DetailAnswer, "serialization"),
        (WebhookBody, "validation"),
        (AdminEndpoint, "serialization"),
    ]
    _, top = models_json_schema(extra, ref_template="#/components/schemas/{model}")
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(top.get("$defs", {}))
    paths = doc.setdefault("paths", {})
    for path, (operation_id, summary) in DELIVERY_PATHS.items():
        paths[path] = {"post": _delivery_operation(path, operation_id, summary)}
    doc["paths"] = dict(sorted(paths.items()))
    doc["components"]["schemas"] = dict(sorted(schemas.items()))
    doc["components"]["securitySchemes"] = {
        "adminToken": {
            "type": "http",
            "scheme": "bearer",
            "description": "The estate's admin token: ground truth and the admin API.",
        }
    }
    for path, item in doc["paths"].items():
        if path.startswith(("/truth", "/admin/")):
            for operation in item.values():
                operation["security"] = [{"adminToken": []}]
    doc["webhooks"] = {"ack": _webhook()}
    doc["servers"] = [{"url": "http://127.0.0.1:8701", "description": "promoharness estate"}]
    app.openapi_schema = _without_decimal_patterns(doc)
    return app.openapi_schema


# Patterns some pydantic releases attach to decimals serialised as strings and others do
# not: dropped, so the published contract does not depend on the installed pydantic.
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


def snapshot_name() -> str:
    return f"estate-{CONTRACT_VERSION}.json"


def contract_document() -> dict[str, Any]:
    """The contract as any estate serves it (built from a one-store estate: the routes and
    answers do not depend on the scenario)."""
    from simulators.apps import create_sim_app

    return create_sim_app(_PaperEstate()).openapi()


class _PaperEstate:
    """A one-store estate that is never served: enough to build the app's routes."""

    def __init__(self) -> None:
        import datetime as dt

        from simulators.estate import build_estate

        self.seed = 0
        self.estate = build_estate(1, seed=0, n_products=1)
        self.models = {m.id: m for m in self.estate.endpoints()}
        self.start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        self.horizon = 86_400.0

    @property
    def delivery_models(self) -> list[Any]:
        return list(self.models.values())

    def fault_targets(self, fault: Any) -> list[Any]:
        return []

    def set_fault(self, fault: Any, on: bool) -> list[Any]:
        return []
