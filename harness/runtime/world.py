"""Scenario -> the objects both runtimes drive: estate models, orchestrator, policies, faults.

Built once per run from a validated ``Scenario``; the SimPy driver (``sim.py``) and the
asyncio driver use the same ``World`` so that a scenario means the same estate, the same
profiles and the same delivery policies under either clock.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from dataclasses import dataclass, field

from harness.inputs import InputError
from harness.orchestrator.core import EndpointInfo, Orchestrator
from harness.orchestrator.delivery import (
    Backoff,
    BreakerConfig,
    DeliveryPolicy,
    DistributionMode,
    RateLimitConfig,
    RetryBudgetConfig,
)
from harness.scenario import FaultSpec, LatencySpec, PolicySpec, ProfileSpec, Scenario
from simulators.endpoint import EndpointModel
from simulators.estate import DEFAULT_REGIONS, Estate, RegionSpec, build_estate
from simulators.profiles import (
    PROFILES,
    Latency,
    Outage,
    Profile,
    RandomOutages,
    RateLimit,
    capacity_cut,
)
from simulators.served import OUTAGE_FAULTS, Fault

# Delivery endpoints: every model of the estate. The ERP takes each promotion into its
# price book (the system of record) besides answering validation and funding checks.
DELIVERY_CHANNELS = ("erp", "pos", "ecommerce", "loyalty", "marketplace")

# A sensible reference policy per channel when the scenario names none.
DEFAULT_POLICIES: dict[str, DeliveryPolicy] = {
    # Batch-only stores acknowledge at their next pick-up (hourly at worst).
    "pos": DeliveryPolicy(
        timeout=10.0,
        max_attempts=8,
        ack_timeout=3900.0,
        backoff=Backoff("full_jitter", 2.0, 300.0),
    ),
    "ecommerce": DeliveryPolicy(timeout=10.0, max_attempts=6, ack_timeout=300.0),
    "loyalty": DeliveryPolicy(timeout=10.0, max_attempts=6),
    "erp": DeliveryPolicy(timeout=30.0, max_attempts=8),
    "marketplace": DeliveryPolicy(timeout=15.0, max_attempts=6, ack_timeout=1800.0),
}


def latency_of(spec: LatencySpec) -> Latency:
    return Latency(
        spec.kind,
        mean=spec.mean,
        low=spec.low,
        high=spec.high,
        median=spec.median,
        sigma=spec.sigma,
    )


def profile_of(base: Profile, spec: ProfileSpec | None) -> Profile:
    """``base`` (or the spec's preset) with the fields the scenario sets replaced."""
    if spec is None:
        return base
    profile = PROFILES[spec.preset] if spec.preset else base
    changes: dict[str, object] = {}
    if spec.latency is not None:
        changes["latency"] = latency_of(spec.latency)
    if spec.ack_delay is not None:
        changes["ack_delay"] = latency_of(spec.ack_delay)
    for name in ("error_rate", "timeout_rate", "lost_ack_rate", "capacity", "idempotent"):
        value = getattr(spec, name)
        if value is not None:
            changes[name] = value
    if spec.rate_limit is not None:
        changes["rate_limit"] = RateLimit(spec.rate_limit.rate, float(spec.rate_limit.burst))
    outages: list[Outage | RandomOutages] = [Outage(o.start, o.end, o.mode) for o in spec.outages]
    if spec.random_outages is not None:
        r = spec.random_outages
        outages.append(RandomOutages(mtbf=r.mtbf, mttr=r.mttr, mode=r.mode))
    if outages:
        changes["outages"] = tuple(profile.outages) + tuple(outages)
    return dataclasses.replace(profile, **changes) if changes else profile


def policy_of(spec: PolicySpec) -> DeliveryPolicy:
    return DeliveryPolicy(
        timeout=spec.timeout,
        max_attempts=spec.max_attempts,
        backoff=Backoff(spec.backoff.kind, spec.backoff.base, spec.backoff.cap),
        honour_retry_after=spec.honour_retry_after,
        ack_timeout=spec.ack_timeout,
        breaker=BreakerConfig(**spec.breaker.model_dump()) if spec.breaker else None,
        retry_budget=RetryBudgetConfig(**spec.retry_budget.model_dump())
        if spec.retry_budget
        else None,
        concurrency=spec.concurrency,
        rate_limit=RateLimitConfig(spec.rate_limit.rate, spec.rate_limit.burst)
        if spec.rate_limit
        else None,
        distribution=DistributionMode(
            spec.distribution.kind, spec.distribution.interval, spec.distribution.offset
        ),
    )


def policies_of(scenario: Scenario) -> tuple[dict[str, DeliveryPolicy], DeliveryPolicy]:
    default = policy_of(scenario.policies["default"]) if "default" in scenario.policies else None
    policies = dict(DEFAULT_POLICIES) if default is None else {}
    for channel, spec in scenario.policies.items():
        if channel != "default":
            policies[channel] = policy_of(spec)
    return policies, default or DeliveryPolicy()


def regions_of(scenario: Scenario) -> tuple[RegionSpec, ...] | None:
    if scenario.estate.regions is None:
        return None
    known = {r.name: r for r in DEFAULT_REGIONS}
    out = []
    for spec in scenario.estate.regions:
        template = known.get(spec.name)
        versions = template.versions if template else (("v7-realtime", 1.0),)
        if spec.batch_share is not None:
            realtime = max(0.0, 1.0 - spec.batch_share)
            versions = tuple(
                (name, share)
                for name, share in (("v7-realtime", realtime), ("v5-batch", spec.batch_share))
                if share > 0
            )
        links = (
            ((spec.link, 1.0),)
            if spec.link
            else (template.links if template else (("healthy-pos", 1.0),))
        )
        out.append(RegionSpec(spec.name, spec.timezone, spec.share, versions, links))
    return tuple(out)


@dataclass
class World:
    """Everything a run drives, built from one scenario and seed.

    It is the ``simulators.served.ServedEstate`` the simulator apps serve (models, seed,
    ``start``, ``horizon``, fault switching): the estate's HTTP face never sees a scenario.
    """

    scenario: Scenario
    seed: int
    estate: Estate
    models: dict[str, EndpointModel]
    policies: dict[str, DeliveryPolicy]
    default_policy: DeliveryPolicy
    base_profiles: dict[str, Profile] = field(default_factory=dict)

    @property
    def delivery_models(self) -> list[EndpointModel]:
        return [m for m in self.models.values() if m.channel in DELIVERY_CHANNELS]

    @property
    def start(self) -> dt.datetime:
        return self.scenario.start

    @property
    def horizon(self) -> float:
        return self.scenario.duration

    def endpoint_infos(self) -> list[EndpointInfo]:
        # A batch store's own poll phase is its business (it picks up at its polls); the
        # orchestrator's batch window is the channel's, so the per-endpoint offset is unset.
        return [
            EndpointInfo(**{**m.endpoint_info(), "batch_offset": None})
            for m in self.delivery_models
        ]

    def orchestrator(self, rng: random.Random | None = None) -> Orchestrator:
        return Orchestrator(
            self.endpoint_infos(),
            self.policies,
            rng=rng or random.Random(f"{self.seed}:orchestrator"),
            default_policy=self.default_policy,
        )

    def budgets(self) -> dict[str, float]:
        """Funded budget per promotion: the scenario's, else the promotion's own cap."""
        out: dict[str, float] = {}
        for p in self.scenario.promotions:
            if p.id in self.scenario.budgets:
                out[p.id] = float(self.scenario.budgets[p.id])
            elif p.funding.budget_cap is not None:
                out[p.id] = float(p.funding.budget_cap)
        return out

    def fault_targets(self, fault: FaultSpec | Fault) -> list[EndpointModel]:
        models = list(self.models.values())
        if fault.endpoints:
            wanted = set(fault.endpoints)
            return [m for m in models if m.id in wanted]
        if fault.kind == "region_offline":
            return [m for m in models if m.channel == "pos" and m.region == fault.region]
        if fault.kind == "quota":
            return [m for m in models if m.channel == (fault.channel or "erp")]
        return [m for m in models if m.channel == fault.channel]

    def set_fault(self, fault: FaultSpec | Fault, on: bool) -> list[EndpointModel]:
        """Switch a fault on or off at the models it targets; returns those models."""
        targets = self.fault_targets(fault)
        for model in targets:
            base = self.base_profiles[model.id]
            profile = faulted(base, fault) if on else base
            model.reconfigure(profile, seed=self.seed, horizon=self.scenario.duration)
        return targets


def outage_window(fault: FaultSpec, horizon: float) -> Outage:
    end = fault.end if fault.end is not None else max(horizon, fault.start) + 1.0
    return Outage(fault.start, end, fault.mode)


def faulted(base: Profile, fault: FaultSpec | Fault) -> Profile:
    """The profile a switched fault turns ``base`` into while it is on."""
    if fault.kind == "error_rate":
        rate = min(1.0 - base.timeout_rate - base.lost_ack_rate, float(fault.rate or 0))
        return dataclasses.replace(base, error_rate=rate)
    if fault.kind == "lost_acks":
        return dataclasses.replace(base, ack_loss_rate=float(fault.rate or 0))
    if fault.kind == "quota":
        rate = float(fault.rate or 1)
        return dataclasses.replace(base, rate_limit=RateLimit(rate, max(1.0, rate)))
    if fault.kind == "capacity":
        return capacity_cut(base, float(fault.rate or 1))
    raise ValueError(f"fault kind {fault.kind!r} is not switched at run time")


def build_world(scenario: Scenario, seed: int | None = None) -> World:
    seed = scenario.seed if seed is None else seed
    estate = build_estate(
        scenario.estate.stores,
        regions_of(scenario),
        seed,
        n_products=scenario.estate.products,
        horizon=scenario.duration,
    )
    models = {m.id: m for m in estate.endpoints()}
    for model in models.values():
        spec = scenario.endpoints.get(model.channel)  # type: ignore[call-overload]
        if spec is not None:
            model.reconfigure(profile_of(model.profile, spec), seed=seed, horizon=scenario.duration)
            if spec.dialect:
                from harness.domain.dialects import parse_dialects

                model.dialect = parse_dialects(spec.dialect)  # type: ignore[attr-defined]
    policies, default = policies_of(scenario)
    world = World(scenario, seed, estate, models, policies, default)
    regions = {r.name for r in estate.regions}
    for i, fault in enumerate(scenario.faults):
        if fault.region and fault.region not in regions:
            raise InputError(
                f"unknown region {fault.region!r}; the estate has {', '.join(sorted(regions))}",
                field=f"faults.{i}.region",
            )
        missing = set(fault.endpoints) - set(models)
        if missing:
            raise InputError(f"unknown endpoints {sorted(missing)}", field=f"faults.{i}.endpoints")
        if fault.kind in OUTAGE_FAULTS:
            # Scheduled outages are part of the profile from the start, so the endpoint's
            # own schedule (batch pick-ups skip outages) and the outage records see them.
            window = outage_window(fault, scenario.duration)
            for model in world.fault_targets(fault):
                profile = dataclasses.replace(
                    model.profile, outages=(*model.profile.outages, window)
                )
                model.reconfigure(profile, seed=seed, horizon=scenario.duration)
    world.base_profiles = {m.id: m.profile for m in models.values()}
    return world
