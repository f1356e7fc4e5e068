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

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from harness.domain.promotion import CHANNELS, Promotion
from harness.inputs import InputError, Location, parse_value, read_document, validate_data

SCENARIO_DIR = Path(__file__).resolve().parent.parent / "scenarios"
DEFAULT_SCENARIO = "weekend-private-label"
ENDPOINT_KINDS = ("erp", "pos", "ecommerce", "loyalty", "marketplace")

# Size limits: a scenario past one of them would run for hours or exhaust memory, so it
# fails at load time with the limit named (exit 2) instead.
MAX_STORES = 20_000  # estate.stores
MAX_PRODUCTS = 100_000  # estate.products
MAX_PROMOTIONS = 2_000  # promotions after series copies are made
MAX_TIMELINE_STEPS = 20_000  # timeline steps after series copies are made
MAX_SALES = 5_000_000  # expected shopper sales over the run (rates x curve peak x duration)
MAX_QUOTES = 200_000  # shelf-price samples (duration / quote_interval)
MAX_SEED = 2**63 - 1  # seeds are 64-bit; |seed| beyond is a mistake, not a seed


class _Section(BaseModel):
    # NaN and infinities are refused everywhere: ".inf" seconds or rates are never meant.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _known_preset(value: str | None) -> str | None:
    from simulators.profiles import PROFILES

    if value is not None and value not in PROFILES:
        raise ValueError(f"unknown preset {value!r}; known: {', '.join(sorted(PROFILES))}")
    return value


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
    mtbf: float = Field(ge=1, description="Mean time between failures (s).")
    mttr: float = Field(ge=0.001, description="Mean time to repair (s).")
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

    _preset = field_validator("preset")(_known_preset)


# --- estate, catalog, traffic -------------------------------------------------------------


class RegionSpec(_Section):
    name: str
    timezone: str
    share: float = Field(default=1.0, gt=0, description="Relative share of the stores.")
    batch_share: float | None = Field(
        default=None, ge=0, le=1, description="Share of batch-only POS (nightly/15-min pick-up)."
    )
    link: str | None = Field(default=None, description="Link profile preset for every store.")

    _link = field_validator("link")(_known_preset)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo

        try:
            ZoneInfo(value)
        except (ValueError, KeyError, OSError):  # ZoneInfoNotFoundError is a KeyError
            raise ValueError(f"unknown IANA time zone {value!r}") from None
        return value


class EstateSpec(_Section):
    stores: int = Field(default=600, ge=1, le=MAX_STORES)
    regions: list[RegionSpec] | None = Field(default=None, min_length=1)
    products: int = Field(default=400, ge=10, le=MAX_PRODUCTS)

    @field_validator("regions")
    @classmethod
    def _distinct(cls, value: list[RegionSpec] | None) -> list[RegionSpec] | None:
        names = [r.name for r in value or []]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise ValueError(f"{i}.name: two regions are named {name!r}")
        return value


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
    basket_pool: int = Field(
        default=2000, ge=1, le=100_000, description="Distinct baskets shoppers bring."
    )
    quote_interval: float = Field(default=300.0, ge=1, description="Shelf-price samples (s).")
    quote_skus: int = Field(default=5, ge=1, le=10_000)
    quote_stores: int = Field(default=20, ge=1, le=MAX_STORES, description="Stores per quote.")

    @field_validator("basket_lines")
    @classmethod
    def _lines(cls, value: tuple[int, int]) -> tuple[int, int]:
        if not 1 <= value[0] <= value[1] <= 100:
            raise ValueError("give [fewest, most] lines with 1 <= fewest <= most <= 100")
        return value

    file: str | None = Field(default=None, description="replay: CSV/Parquet trace.")

    @model_validator(mode="after")
    def _replay_file(self) -> TrafficSpec:
        if self.kind == "replay" and not self.file:
            raise ValueError("traffic kind 'replay' needs 'file'")
        return self


# --- faults, timeline, policies, SLOs -------------------------------------------------------


class FaultSpec(_Section):
    kind: Literal[
        "region_offline", "error_rate", "lost_acks", "quota", "endpoint_offline", "capacity"
    ]
    start: float = Field(default=0.0, ge=0)
    end: float | None = Field(default=None, gt=0)
    region: str | None = None
    channel: Literal["erp", "pos", "ecommerce", "loyalty", "marketplace"] | None = None
    endpoints: list[str] = Field(default_factory=list)
    rate: float | None = Field(
        default=None, ge=0, description="Error/loss share, quota/s, or capacity share left."
    )
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
        if self.kind == "capacity" and not (self.rate is not None and 0 < self.rate <= 1):
            raise ValueError("fault 'capacity' needs 'rate', the share of capacity left, in (0, 1]")
        if self.kind == "capacity" and not (self.channel or self.endpoints):
            raise ValueError("fault 'capacity' needs 'channel' or 'endpoints'")
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
    interval: float = Field(default=900.0, ge=1, description="Batch pick-up period (s).")
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
    seed: int = Field(default=0, ge=-MAX_SEED, le=MAX_SEED)
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
    series_every: dict[str, float] = Field(
        default_factory=dict,
        description="series promo id -> seconds: copy n's timeline steps come (n - 1) x "
        "this later, a paced feed of item-level promotions.",
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
        # Each message starts with the field's path, so the error points at its own line.
        ids = [p.id for p in self.promotions]
        for i, promo in enumerate(ids):
            if promo in ids[:i]:
                first = ids.index(promo)
                raise ValueError(f"promotions.{i}.id: {promo!r} is already promotions.{first}")
        for i, step in enumerate(self.timeline):
            if step.promo is not None and step.promo not in ids:
                raise ValueError(f"timeline.{i}.promo: unknown promotion {step.promo!r}")
        for promo, count in self.series.items():
            if promo not in ids:
                raise ValueError(f"series.{promo}: unknown promotion {promo!r}")
            if count < 1:
                raise ValueError(f"series.{promo}: count must be at least 1")
        for promo, every in self.series_every.items():
            if promo not in self.series:
                raise ValueError(f"series_every.{promo}: {promo!r} is not in series")
            if not every > 0:
                raise ValueError(f"series_every.{promo}: must be > 0, got {every}")
        copies = len(ids) + sum(count - 1 for count in self.series.values())
        if copies > MAX_PROMOTIONS:
            raise ValueError(
                f"series: {copies} promotions with the copies, over {MAX_PROMOTIONS} "
                "(limit MAX_PROMOTIONS)"
            )
        steps = sum(self.series.get(step.promo or "", 1) for step in self.timeline)
        if steps > MAX_TIMELINE_STEPS:
            raise ValueError(
                f"timeline: {steps} steps with the series copies, over {MAX_TIMELINE_STEPS} "
                "(limit MAX_TIMELINE_STEPS)"
            )
        self._check_load()
        self._check_metrics(ids)
        return self

    def _check_metrics(self, ids: list[str]) -> None:
        from harness.metric_paths import unknown_metric

        # The ids a run reports under: series copies replace their original.
        final = [
            x
            for p in ids
            for x in (
                [f"{p}.{n:03d}" for n in range(1, self.series[p] + 1)] if p in self.series else [p]
            )
        ]
        rollbacks = sum(
            self.series.get(step.promo or "", 1)
            for step in self.timeline
            if step.action == "rollback"
        )
        if self.traffic.kind == "replay":
            rollbacks = MAX_TIMELINE_STEPS  # a trace's own timeline replaces the file's
        for i, slo in enumerate(self.slos):
            problem = unknown_metric(slo.metric, final, rollbacks)
            if problem:
                raise ValueError(f"slos.{i}.metric: {problem}")

    def _check_load(self) -> None:
        traffic = self.traffic
        if traffic.kind == "generated":
            sites = 2  # the web shop and the marketplace
            per_hour = traffic.rate_per_store * self.estate.stores + traffic.rate_online * sites
            sales = per_hour * traffic.curve.peak_multiple * self.duration / 3600
            if sales > MAX_SALES:
                raise ValueError(
                    f"traffic: about {sales:.3g} sales expected at peak rates, over "
                    f"{MAX_SALES} (limit MAX_SALES); lower the rates or the duration"
                )
        if traffic.kind != "none" and self.duration / traffic.quote_interval > MAX_QUOTES:
            raise ValueError(
                f"traffic.quote_interval: {self.duration / traffic.quote_interval:.3g} "
                f"shelf-price samples, over {MAX_QUOTES} (limit MAX_QUOTES)"
            )

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
            step.model_copy(update={"promo": x, **self._paced(step, i)})
            for step in self.timeline
            for i, x in enumerate(copies.get(step.promo, [step.promo]) if step.promo else [None])
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
                "series_every": {},
            }
        )

    def _paced(self, step: StepSpec, copy: int) -> dict[str, float]:
        """The shifted times of copy ``copy`` (0-based) of a paced series' step."""
        every = self.series_every.get(step.promo or "")
        if not every or not copy:
            return {}
        shifted = {"at": step.at + copy * every}
        if step.publish_at is not None:
            shifted["publish_at"] = step.publish_at + copy * every
        return shifted


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
        raise InputError(f"expects path.to.key=value, got {text!r}", field="--set")
    key, raw = text.split("=", 1)
    if not key or any(not part for part in key.split(".")):
        raise InputError(f"empty key segment in {key!r}", field=f"--set {text}")
    value = parse_value(raw, f"--set {key}")
    path: list[str | int] = [int(p) if p.isdigit() else p for p in key.split(".")]
    return path, value


def apply_overrides(
    data: Any, overrides: list[str], origins: dict[Location, str] | None = None
) -> Any:
    """Set each ``a.b.0.c=value`` (value parsed as YAML) in the raw document.

    ``origins``, when given, receives each set location -> "--set a.b.0.c=value", so a
    problem with the value names the option rather than a line of the file.
    """
    for text in overrides:
        path, value = parse_override(text)
        option = f"--set {text}"
        node = data
        where: list[str | int] = []
        for depth, part in enumerate(path[:-1]):
            if isinstance(node, dict):
                part = str(part)  # mapping keys are text, even "2024"
            try:
                child = node[part]
            except (KeyError, IndexError, TypeError):
                if isinstance(node, dict):
                    child = node[part] = {}
                else:
                    missing = ".".join(str(p) for p in path[: depth + 1])
                    raise InputError(f"no {missing!r} in the scenario", field=option) from None
            if not isinstance(child, dict | list) and depth < len(path) - 2:
                inside = ".".join(str(p) for p in path[: depth + 1])
                raise InputError(f"{inside!r} is a single value, not a section", field=option)
            where.append(part)
            node = child
        last = path[-1]
        if isinstance(node, dict):
            last = str(last)
            node[last] = value
        elif isinstance(node, list) and isinstance(last, int) and last < len(node):
            node[last] = value
        else:
            raise InputError(f"cannot set {last!r} here", field=option)
        if origins is not None:
            origins[(*where, last)] = option
    return data


def load_scenario(
    name_or_path: str | Path | None = None,
    overrides: list[str] | None = None,
) -> Scenario:
    """Read, override and validate a scenario; bad input raises InputError (file:line: field)."""
    path = scenario_path(name_or_path)
    data, lines = read_document(path)
    origins: dict[Location, str] = {}
    if overrides:
        data = apply_overrides(data, overrides, origins)
    scenario: Scenario = validate_data(Scenario, data, path, lines, origins)
    from harness.scenario_places import check_places  # it imports this module

    check_places(scenario, path, data, lines)
    expanded = scenario.expanded()
    from harness.runtime.replay import check_replay  # it imports this module

    check_replay(expanded)  # every trace row, before any simulation
    return expanded
