"""Load campaign files: which scenario, how hard, how fast, and the load gates.

A campaign (``loadtests/campaigns/*.yaml``) names a scenario plus what a load run needs
on top of it: the scenario overrides and extra timeline steps (a rollback under load),
the clock compression, the shopper arrival rate at the curve's peak, the concurrency
ceiling, the wall-clock duration, the propagation grace of the price oracle, and the
load gates — SLO-shaped thresholds on ``summary.json`` paths (``load.p95_ms``,
``load.error_rate``, ``load.stale_price_rate``, ``propagation.overall.t99``...) that are
evaluated beside the scenario's own SLOs.

``resolve_scenario`` builds the effective scenario and ``locust_config`` the JSON the
locustfile reads (``PROMO_LOAD_CONFIG``): estate, baskets, promotions, timeline, curve.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from harness.inputs import read_document, validate_data
from harness.runtime.shoppers import make_baskets
from harness.runtime.world import World
from harness.scenario import Scenario, SLOSpec, StepSpec, apply_overrides, scenario_path

CAMPAIGN_DIR = Path(__file__).resolve().parents[2] / "loadtests" / "campaigns"
DEFAULT_GATES = (
    SLOSpec(name="shopper p95 latency", metric="load.p95_ms", op="<=", threshold=250),
    SLOSpec(name="shopper error rate", metric="load.error_rate", op="<=", threshold=0.01),
    SLOSpec(name="stale price rate", metric="load.stale_price_rate", op="<=", threshold=0.001),
)


class Mix(BaseModel):
    """Shares of price checks per pricing endpoint kind (normalised)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    pos: float = Field(default=0.7, ge=0)
    web: float = Field(default=0.25, ge=0)
    marketplace: float = Field(default=0.05, ge=0)


class Campaign(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    description: str = ""
    scenario: str = Field(description="A scenario file or library name.")
    set: list[str] = Field(default_factory=list, description="Scenario overrides (--set).")
    timeline: list[dict[str, Any]] = Field(
        default_factory=list, description="Extra operator steps appended to the scenario's."
    )
    speed: float = Field(default=60.0, gt=0, description="Scenario seconds per wall second.")
    duration: float = Field(default=60.0, gt=0, le=3600, description="Wall seconds of load.")
    rate: float = Field(default=100.0, gt=0, description="Shopper requests/s at the peak.")
    users: int = Field(default=50, ge=1, le=10_000, description="Concurrent shopper ceiling.")
    checkout_share: float = Field(default=0.3, ge=0, le=1)
    mix: Mix = Field(default_factory=Mix)
    callback_rate: float = Field(default=2.0, ge=0, description="Channel acks per second.")
    grace: float | dict[str, float] = Field(
        default=300.0,
        description="Scenario seconds a push endpoint may lag a publish (a rollback: its "
        "deadline) before a price mismatch is a failure; batch stores add their interval. "
        "A mapping gives it per channel (pos, ecommerce, marketplace, default).",
    )
    scenario_slos: bool = Field(default=True, description="Also gate on the scenario's SLOs.")
    gates: list[SLOSpec] = Field(default_factory=lambda: list(DEFAULT_GATES))
    because: dict[str, str] = Field(
        default_factory=dict,
        description="Why each gate marked 'expect: fail' fails (gate name -> the modelled "
        "reason): the report says 'expected: fails because ...'. One per such gate.",
        validate_default=True,  # a campaign with no 'because' at all is checked too
    )

    @field_validator("because")
    @classmethod
    def _reasons(cls, because: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        # On 'because', so the error names that field rather than the whole document.
        gates = info.data.get("gates") or []
        expected = {g.name for g in gates if g.expect == "fail"}
        if missing := sorted(expected - set(because)):
            raise ValueError(f"gates expected to fail need a reason here: {missing}")
        if stray := sorted(set(because) - expected):
            raise ValueError(f"names no gate marked 'expect: fail': {stray}")
        return because


def campaign_path(name_or_path: str | Path) -> Path | None:
    """A campaign file (path or shipped name), or None when it names no campaign."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") and candidate.exists():
        data, _ = read_document(candidate)  # the document limits; bad YAML is InputError
        return candidate if isinstance(data, dict) and "scenario" in data else None
    shipped = CAMPAIGN_DIR / f"{name_or_path}.yaml"
    return shipped if shipped.exists() else None


def load_campaign(name_or_path: str | Path) -> Campaign:
    """A campaign file, or a bare scenario wrapped in the default campaign."""
    path = campaign_path(name_or_path)
    if path is None:
        scenario = scenario_path(name_or_path)  # InputError when it is neither
        return Campaign(name=scenario.stem, scenario=str(scenario))
    data, lines = read_document(path)
    campaign: Campaign = validate_data(Campaign, data, path, lines)
    return campaign


def resolve_scenario(campaign: Campaign, overrides: list[str] | None = None) -> Scenario:
    """The scenario under load: overrides applied, the campaign's steps appended."""
    path = scenario_path(campaign.scenario)
    data, lines = read_document(path)
    data = apply_overrides(data, [*campaign.set, *(overrides or [])])
    if campaign.timeline:
        data["timeline"] = [*data.get("timeline", []), *campaign.timeline]
    scenario: Scenario = validate_data(Scenario, data, path, lines)
    return scenario.expanded()


def dump_scenario(scenario: Scenario, target: Path) -> Path:
    """Write the effective scenario as YAML, for ``promoharness serve``."""
    data = scenario.model_dump(mode="json", by_alias=True, exclude_defaults=False)
    target.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return target


def _step(step: StepSpec) -> dict[str, Any]:
    return step.model_dump(mode="json")


def locust_config(
    campaign: Campaign,
    scenario: Scenario,
    world: World,
    *,
    api_url: str,
    sim_url: str,
    epoch: float,
    workers: int = 1,
    rate: float | None = None,
    users: int | None = None,
    duration: float | None = None,
    check: str = "full",
) -> dict[str, Any]:
    """Everything the locustfile needs, as plain JSON (it imports harness.domain only)."""
    estate = world.estate
    rng = random.Random(scenario.seed)
    baskets = make_baskets(estate.catalog, scenario.traffic, rng)[:500]
    stores = [
        {
            "id": s.id,
            "region": s.region,
            "timezone": s.timezone,
            "mode": s.mode,
            "interval": float(s.describe()["poll_interval"] or 0.0),
            "dialects": list(s.dialect.names),
        }
        for s in estate.stores
    ]
    return {
        "campaign": campaign.name,
        "scenario": scenario.name,
        "start": scenario.start.isoformat(),
        "api_url": api_url,
        "sim_url": sim_url,
        "epoch": epoch,
        "speed": campaign.speed,
        "duration": duration or campaign.duration,
        "rate": rate or campaign.rate,
        "users": users or campaign.users,
        "workers": workers,
        "checkout_share": campaign.checkout_share,
        "mix": campaign.mix.model_dump(),
        "callback_rate": campaign.callback_rate,
        "grace": campaign.grace,
        "check": check,
        "curve": scenario.traffic.curve.model_dump(),
        "stores": stores,
        "web": {"id": estate.web.id, "dialects": list(estate.web.dialect.names)},
        "marketplace": {
            "id": estate.marketplace.id,
            "dialects": list(estate.marketplace.dialect.names),
        },
        "promotions": [p.model_dump(mode="json", by_alias=True) for p in scenario.promotions],
        "timeline": [_step(s) for s in sorted(scenario.timeline, key=lambda s: s.at)],
        "baskets": [b.model_dump(mode="json") for b in baskets],
    }


def gates_of(campaign: Campaign, scenario: Scenario) -> list[dict[str, Any]]:
    """The thresholds that decide the exit code: scenario SLOs (if kept) and load gates."""
    slos = (
        [s.model_dump(exclude={"expect"}) for s in scenario.slos] if campaign.scenario_slos else []
    )
    return [*slos, *(g.model_dump(exclude={"expect"}) for g in campaign.gates)]


def expectations(campaign: Campaign, scenario: Scenario) -> list[tuple[str, str]]:
    """(expect, because) for each of ``gates_of``'s thresholds, in the same order."""
    # A scenario's documented failing SLO gives its reason in the scenario file's header.
    why = f"documented in scenario {scenario.name}"
    slos = [(s.expect, why) for s in scenario.slos] if campaign.scenario_slos else []
    return [*slos, *((g.expect, campaign.because.get(g.name, "")) for g in campaign.gates)]
