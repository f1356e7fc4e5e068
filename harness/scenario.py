"""Scenario files: the schema of a flash-sale scenario, its loader and ``--set`` overrides.

A scenario is one YAML document (see ``scenarios/``): the estate, per-channel endpoint
profiles, the catalog, the promotions and the operator timeline, shopper traffic, faults,
orchestrator delivery policies, duration, seed and SLO thresholds. Every model forbids
unknown keys, so a typo fails with file, line and field (``harness.inputs``) instead of
being silently ignored. ``apply_overrides`` implements ``--set path.to.key=value``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from harness.domain.promotion import CHANNELS, Promotion
from harness.inputs import InputError, read_document, validate_data

SCENARIO_DIR = Path(__file__).resolve().parent.parent / "scenarios"
DEFAULT_SCENARIO = "weekend-private-label"
ENDPOINT_KINDS = ("erp", "pos", "ecommerce", "loyalty", "marketplace")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- endpoint behaviour -------------------------------------------------------------------


class LatencySpec(_Section):
    kind: Literal["fixed", "uniform", "exponential", "lognormal"] = "lognormal"
    mean: float | None = Field(default=None, gt=0, description="fixed/exponential: seconds.")
    low: float | None = Field(default=None, ge=0)
    high: float | None = Field(default=None, gt=0)
    median: float | None = Field(default=None, gt=0, description="lognormal: median seconds.")
    sigma: float | None = Field(default=None, gt=0, description="lognormal: shape.")

    @model_validator(mode="after")
    def _parameters(self) -> LatencySpec:
        needed = {
            "fixed": ("mean",),
            "exponential": ("mean",),
            "uniform": ("low", "high"),
            "lognormal": ("median", "sigma"),
        }[self.kind]
        missing = [name for name in needed if getattr(self, name) is None]
        if missing:
            raise ValueError(f"latency kind '{self.kind}' needs {', '.join(missing)}")
        if self.kind == "uniform" and self.high <= self.low:  # type: ignore[operator]
            raise ValueError("uniform latency needs high > low")
        return self


class RateLimitSpec(_Section):
    rate: float = Field(gt=0, description="Requests per second before 429.")
    burst: int = Field(default=1, ge=1)


class OutageSpec(_Section):
    start: float = Field(ge=0)
    end: float = Field(gt=0)
    mode: Literal["refuse", "hang"] = "refuse"

    @field_validator("end")
    @classmethod
    def _after(cls, value: float, info: Any) -> float:
        if "start" in info.data and value <= info.data["start"]:
            raise ValueError("end must be after start")
        return value


class RandomOutageSpec(_Section):
    mtbf: float = Field(gt=0, description="Mean time between failures (s).")
    mttr: float = Field(gt=0, description="Mean time to repair (s).")
    mode: Literal["refuse", "hang"] = "refuse"


class ProfileSpec(_Section):
    """How one kind of endpoint behaves; every field overrides the named preset."""

    preset: str | None = Field(default=None, description="A simulators.profiles preset name.")
    latency: LatencySpec | None = None
    error_rate: float | None = Field(default=None, ge=0, le=1)
    timeout_rate: float | None = Field(default=None, ge=0, le=1)
    lost_ack_rate: float | None = Field(default=None, ge=0, le=1)
    capacity: int | None = Field(default=None, ge=1, description="Requests served at once.")
    rate_limit: RateLimitSpec | None = None
    outages: list[OutageSpec] = Field(default_factory=list)
    random_outages: RandomOutageSpec | None = None
    idempotent: bool | None = None
    network_delay: float | None = Field(default=None, ge=0, description="One-way seconds.")
    dialect: str = Field(default="", description="Comma-separated pricing dialects.")
    ack_delay: LatencySpec | None = Field(default=None, description="Async ack/activation delay.")


# --- estate, catalog, traffic -------------------------------------------------------------


class RegionSpec(_Section):
    name: str
    timezone: str
    share: float = Field(default=1.0, gt=0, description="Relative share of the stores.")
    batch_share: float | None = Field(
        default=None, ge=0, le=1, description="Share of batch-only POS (nightly/15-min pick-up)."
    )
    link: str | None = Field(default=None, description="Link profile preset for every store.")


class EstateSpec(_Section):
    stores: int = Field(default=600, ge=1, le=20_000)
    regions: list[RegionSpec] | None = None
    products: int = Field(default=400, ge=10, le=100_000)


class CurveSpec(_Section):
    """Flash-sale demand: linear ramp to ``peak_multiple`` x base, hold, exponential decay."""

    start: float = Field(default=0.0, ge=0)
    ramp: float = Field(default=600.0, ge=0)
    hold: float = Field(default=1800.0, ge=0)
    peak_multiple: float = Field(default=4.0, ge=1)
    decay: float = Field(default=3600.0, gt=0, description="Decay time constant (s).")


class TrafficSpec(_Section):
    kind: Literal["generated", "replay", "none"] = "generated"
    rate_per_store: float = Field(default=60.0, ge=0, description="Base sales/hour per store.")
    rate_online: float = Field(default=600.0, ge=0, description="Base sales/hour per site.")
    curve: CurveSpec = Field(default_factory=CurveSpec)
    basket_lines: tuple[int, int] = (1, 6)
    basket_pool: int = Field(default=2000, ge=1, description="Distinct baskets shoppers bring.")
    quote_interval: float = Field(default=300.0, gt=0, description="Shelf-price samples (s).")
    quote_skus: int = Field(default=5, ge=1)
    quote_stores: int = Field(default=20, ge=1, description="Stores sampled per quote.")
    file: str | None = Field(default=None, description="replay: CSV/Parquet trace.")

    @model_validator(mode="after")
    def _replay_file(self) -> TrafficSpec:
        if self.kind == "replay" and not self.file:
            raise ValueError("traffic kind 'replay' needs 'file'")
        return self


# --- faults, timeline, policies, SLOs -------------------------------------------------------


class FaultSpec(_Section):
    kind: Literal["region_offline", "error_rate", "lost_acks", "quota", "endpoint_offline"]
    start: float = Field(default=0.0, ge=0)
    end: float | None = Field(default=None, gt=0)
    region: str | None = None
    channel: Literal["erp", "pos", "ecommerce", "loyalty", "marketplace"] | None = None
    endpoints: list[str] = Field(default_factory=list)
    rate: float | None = Field(default=None, ge=0, description="Error/loss share, or quota/s.")
    status: Literal[500, 503] = 503
    mode: Literal["refuse", "hang"] = "refuse"

    @model_validator(mode="after")
    def _targets(self) -> FaultSpec:
        if self.kind == "region_offline" and not self.region:
            raise ValueError("fault 'region_offline' needs 'region'")
        if self.kind in ("error_rate", "lost_acks", "quota") and self.rate is None:
            raise ValueError(f"fault '{self.kind}' needs 'rate'")
        if self.kind in ("error_rate", "lost_acks") and not (self.channel or self.endpoints):
            raise ValueError(f"fault '{self.kind}' needs 'channel' or 'endpoints'")
        if self.kind == "endpoint_offline" and not self.endpoints:
            raise ValueError("fault 'endpoint_offline' needs 'endpoints'")
        if self.end is not None and self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class ScopeSpec(_Section):
    channels: list[Literal["erp", "pos", "ecommerce", "loyalty", "marketplace"]] = Field(
        default_factory=list
    )
    regions: list[str] = Field(default_factory=list)
    stores: list[str] = Field(default_factory=list)


Action = Literal[
    "create",
    "submit",
    "validate",
    "approve",
    "reject",
    "schedule",
    "publish",
    "pause",
    "resume",
    "rollback",
    "end",
    "settle",
    "reconcile",
    "replay",
]


class StepSpec(_Section):
    at: float = Field(ge=0, description="Seconds since scenario start.")
    action: Action
    promo: str | None = None
    scope: ScopeSpec = Field(default_factory=ScopeSpec)
    channel: Literal["pos", "ecommerce", "loyalty", "marketplace"] | None = None
    publish_at: float | None = Field(default=None, ge=0, description="schedule: publish time.")
    deadline: float = Field(default=300.0, gt=0, description="rollback: SLO deadline (s).")
    reason: str = ""

    @model_validator(mode="after")
    def _arguments(self) -> StepSpec:
        if self.action != "replay" and not self.promo:
            raise ValueError(f"action '{self.action}' needs 'promo'")
        if self.action in ("pause", "resume") and not self.channel:
            raise ValueError(f"action '{self.action}' needs 'channel'")
        if self.action == "schedule" and self.publish_at is None:
            raise ValueError("action 'schedule' needs 'publish_at'")
        return self


class BackoffSpec(_Section):
    kind: Literal[
        "none", "fixed", "exponential", "full_jitter", "equal_jitter", "decorrelated_jitter"
    ] = "full_jitter"
    base: float = Field(default=1.0, gt=0)
    cap: float = Field(default=60.0, gt=0)


class BreakerSpec(_Section):
    failure_threshold: int = Field(default=5, ge=1)
    open_seconds: float = Field(default=30.0, gt=0)
    half_open_probes: int = Field(default=1, ge=1)
    success_threshold: int = Field(default=1, ge=1)


class BudgetSpec(_Section):
    max_tokens: float = Field(default=100.0, gt=0)
    token_ratio: float = Field(default=0.1, gt=0)


class DistributionSpec(_Section):
    kind: Literal["push", "batch", "hybrid"] = "push"
    interval: float = Field(default=900.0, gt=0)
    offset: float = Field(default=0.0, ge=0)


class PolicySpec(_Section):
    timeout: float = Field(default=10.0, gt=0)
    max_attempts: int = Field(default=5, ge=1, le=1000)
    backoff: BackoffSpec = Field(default_factory=BackoffSpec)
    honour_retry_after: bool = True
    ack_timeout: float = Field(default=120.0, gt=0)
    breaker: BreakerSpec | None = None
    retry_budget: BudgetSpec | None = None
    concurrency: int | None = Field(default=None, ge=1)
    rate_limit: RateLimitSpec | None = None
    distribution: DistributionSpec = Field(default_factory=DistributionSpec)


class SLOSpec(_Section):
    name: str
    metric: str = Field(description="Dotted path into summary.json, e.g. propagation.overall.t95")
    op: Literal["<", "<=", ">", ">=", "==", "!="]
    threshold: float | str | bool
    expect: Literal["pass", "fail"] = Field(
        default="pass", description="What the scenario's documentation says this SLO gives."
    )


class Scenario(_Section):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    description: str = ""
    seed: int = 0
    start: dt.datetime = Field(
        default=dt.datetime(2026, 11, 28, 6, 0, tzinfo=dt.UTC),
        description="The instant t=0 stands for (with offset); windows are read against it.",
    )
    duration: float = Field(default=7200.0, gt=0, le=30 * 86400)
    estate: EstateSpec = Field(default_factory=EstateSpec)
    endpoints: dict[Literal["erp", "pos", "ecommerce", "loyalty", "marketplace"], ProfileSpec] = (
        Field(default_factory=dict)
    )
    promotions: list[Promotion] = Field(min_length=1)
    budgets: dict[str, float] = Field(
        default_factory=dict, description="ERP funding per promotion id (defaults to its cap)."
    )
    series: dict[str, int] = Field(
        default_factory=dict,
        description="promo id -> N: run N item-level copies of it (ids '<id>.001'...), "
        "each timeline step of the id applying to every copy.",
    )
    timeline: list[StepSpec] = Field(min_length=1)
    traffic: TrafficSpec = Field(default_factory=TrafficSpec)
    faults: list[FaultSpec] = Field(default_factory=list)
    policies: dict[str, PolicySpec] = Field(
        default_factory=dict, description="Per channel (pos, ecommerce, ...) or 'default'."
    )
    slos: list[SLOSpec] = Field(default_factory=list)

    @field_validator("start")
    @classmethod
    def _aware(cls, value: dt.datetime) -> dt.datetime:
        if value.tzinfo is None:
            raise ValueError("give the start with an offset, e.g. 2026-11-28T06:00:00Z")
        return value

    @field_validator("policies")
    @classmethod
    def _policy_keys(cls, value: dict[str, PolicySpec]) -> dict[str, PolicySpec]:
        allowed = {"default", "erp", *CHANNELS}
        for key in value:
            if key not in allowed:
                raise ValueError(f"unknown policy key {key!r}; use one of {sorted(allowed)}")
        return value

    @model_validator(mode="after")
    def _references(self) -> Scenario:
        ids = [p.id for p in self.promotions]
        if len(set(ids)) != len(ids):
            raise ValueError("two promotions share an id")
        for i, step in enumerate(self.timeline):
            if step.promo is not None and step.promo not in ids:
                raise ValueError(f"timeline.{i}.promo: unknown promotion {step.promo!r}")
        for promo, count in self.series.items():
            if promo not in ids:
                raise ValueError(f"series: unknown promotion {promo!r}")
            if not 1 <= count <= 10_000:
                raise ValueError(f"series.{promo}: count must be between 1 and 10000")
        return self

    def expanded(self) -> Scenario:
        """The scenario with every ``series`` promotion replaced by its copies."""
        if not self.series:
            return self
        promotions: list[Promotion] = []
        copies: dict[str, list[str]] = {}
        for p in self.promotions:
            count = self.series.get(p.id)
            if count is None:
                promotions.append(p)
                continue
            ids = [f"{p.id}.{i:03d}" for i in range(1, count + 1)]
            copies[p.id] = ids
            promotions.extend(p.model_copy(update={"id": x}) for x in ids)
        timeline = [
            step.model_copy(update={"promo": x})
            for step in self.timeline
            for x in (copies.get(step.promo, [step.promo]) if step.promo else [None])
        ]
        budgets = dict(self.budgets)
        for promo, ids in copies.items():
            if promo in budgets:
                share = budgets.pop(promo) / len(ids)
                budgets.update({x: share for x in ids})
        return self.model_copy(
            update={
                "promotions": promotions,
                "timeline": timeline,
                "budgets": budgets,
                "series": {},
            }
        )


# --- loading ---------------------------------------------------------------------------


def scenario_path(name_or_path: str | Path | None) -> Path:
    """Resolve a scenario argument: a path to a file, or a name from the shipped library."""
    if name_or_path is None:
        name_or_path = DEFAULT_SCENARIO
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or candidate.exists():
        return candidate
    shipped = SCENARIO_DIR / f"{name_or_path}.yaml"
    if shipped.exists():
        return shipped
    raise InputError(
        f"no scenario file or library scenario named {str(name_or_path)!r} "
        f"(library: {', '.join(library_names())})"
    )


def library_names() -> list[str]:
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))


def parse_override(text: str) -> tuple[list[str | int], Any]:
    if "=" not in text:
        raise InputError(f"--set expects path.to.key=value, got {text!r}", field="--set")
    key, raw = text.split("=", 1)
    if not key or any(not part for part in key.split(".")):
        raise InputError(f"--set has an empty key segment in {key!r}", field="--set")
    try:
        value = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError:
        value = raw
    path: list[str | int] = [int(p) if p.isdigit() else p for p in key.split(".")]
    return path, value


def apply_overrides(data: Any, overrides: list[str]) -> Any:
    """Set each ``a.b.0.c=value`` (value parsed as YAML) in the raw document."""
    for text in overrides:
        path, value = parse_override(text)
        node = data
        for depth, part in enumerate(path[:-1]):
            try:
                child = node[part]
            except (KeyError, IndexError, TypeError):
                if isinstance(node, dict) and isinstance(part, str):
                    child = node[part] = {}
                else:
                    where = ".".join(str(p) for p in path[: depth + 1])
                    raise InputError(
                        f"--set {text}: no {where!r} in the scenario", field="--set"
                    ) from None
            node = child
        last = path[-1]
        if (isinstance(node, list) and isinstance(last, int) and last < len(node)) or isinstance(
            node, dict
        ):
            node[last] = value
        else:
            raise InputError(f"--set {text}: cannot set {last!r} here", field="--set")
    return data


def load_scenario(
    name_or_path: str | Path | None = None,
    overrides: list[str] | None = None,
) -> Scenario:
    """Read, override and validate a scenario; bad input raises InputError (file:line: field)."""
    path = scenario_path(name_or_path)
    data, lines = read_document(path)
    if overrides:
        data = apply_overrides(data, overrides)
    scenario: Scenario = validate_data(Scenario, data, path, lines)
    from harness.scenario_places import check_places  # it imports this module

    check_places(scenario, path, data, lines)
    return scenario.expanded()
