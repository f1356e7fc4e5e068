"""Every summary.json key with its unit and definition: the contract CI and scripts read.

``KEYS`` is the single declaration; docs/summary-json.md is generated from it
(``python -m harness.metrics.keys > docs/summary-json.md``) and a test holds the
committed file equal to ``render_markdown()``, and every key of a real summary.json to
an entry here. A path is a tuple of segments: a plain name is a dict key, ``<channel>``,
``<promo>`` and ``<pair>`` stand for any key (promotion ids may contain dots, so paths
are matched segment by segment, never as dotted strings), ``[]`` is every item of a list.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

__all__ = ["KEYS", "Key", "concrete_paths", "documented", "render_markdown", "undocumented"]

PLACEHOLDERS = {"<channel>", "<promo>", "<pair>", "<reason>"}


class Key(NamedTuple):
    path: tuple[str, ...]
    unit: str
    definition: str

    @property
    def dotted(self) -> str:
        return ".".join(self.path).replace(".[]", "[]")


def _k(path: str, unit: str, definition: str) -> Key:
    # "a.b[].c" -> ("a", "b", "[]", "c")
    return Key(tuple(path.replace("[]", ".[]").split(".")), unit, definition)


S = "s (since the publish)"
_PROPAGATION = (
    ("targets", "count", "endpoints a publish targeted (one per endpoint and publish)"),
    ("applied", "count", "targets with an 'applied' record (truth) after their publish"),
    ("acked", "count", "targets with an 'ack' (what the orchestrator believes)"),
    ("t50", S, "time by which 50 % of targets were applied; null when never reached"),
    ("t95", S, "time by which 95 % of targets were applied; null when never reached"),
    ("t99", S, "time by which 99 % of targets were applied; null when never reached"),
    ("t100", S, "time by which every target was applied; null when one never was"),
    ("acked_t95", S, "time by which 95 % of targets were acknowledged; null if never"),
    ("ghosts.applied_not_acked", "count", "applied at the endpoint but never acknowledged"),
    ("ghosts.acked_not_applied", "count", "acknowledged but never applied (a lost apply)"),
    ("ghosts.examples[].endpoint", "id", "a ghost's endpoint (up to 20 examples)"),
    ("ghosts.examples[].kind", "text", "'applied_not_acked' or 'acked_not_applied'"),
    ("ghosts.examples[].promo", "id", "the ghost's promotion"),
    ("ghosts.examples[].version", "count", "the promotion version"),
    ("ghosts.examples[].t", "s (since scenario start)", "when it was applied, or acked"),
)


def _propagation(prefix: str, scope: str) -> list[Key]:
    return [_k(f"{prefix}.{p}", u, f"{scope}: {d}") for p, u, d in _PROPAGATION]


KEYS: tuple[Key, ...] = (
    _k("scenario", "text", "the scenario's name"),
    _k("seed", "integer", "the seed of every random draw of the run"),
    _k("mode", "text", "'sim' (virtual time), 'live' (HTTP) or 'load' (Locust)"),
    *_propagation("propagation.overall", "every target of every publish"),
    *_propagation("propagation.by_channel.<channel>", "the channel's targets"),
    *_propagation("propagation.by_promo.<promo>", "one promotion's publishes"),
    _k("propagation.by_promo.<promo>.publishes", "count", "publish records of the promotion"),
    *_propagation("propagation.by_promo.<promo>.by_channel.<channel>", "promotion x channel"),
    _k(
        "propagation.by_promo.<promo>.late_for_start",
        "object or null",
        "null when the promotion has no schedule and no known validity start",
    ),
    _k(
        "propagation.by_promo.<promo>.late_for_start.start",
        "s (since scenario start)",
        "the promotion's earliest validity start",
    ),
    _k(
        "propagation.by_promo.<promo>.late_for_start.count",
        "count",
        "target endpoints not applied by the start",
    ),
    _k(
        "propagation.by_promo.<promo>.late_for_start.endpoints[]",
        "id",
        "those endpoints",
    ),
    _k("retry_storm.attempts", "count", "delivery attempts ('send' records)"),
    _k("retry_storm.deliveries", "count", "distinct deliveries (promo, endpoint, version, op)"),
    _k("retry_storm.amplification", "ratio", "attempts / deliveries; null without sends"),
    _k(
        "retry_storm.peak_attempt_rate_over_capacity",
        "ratio",
        "max over endpoints of (most sends in one 1 s window) / the endpoint's capacity "
        "(requests/s)",
    ),
    _k("retry_storm.peak.endpoint", "id", "the endpoint of that peak"),
    _k("retry_storm.peak.t", "s (since scenario start)", "start of the peak 1 s window"),
    _k("retry_storm.peak.attempts", "count", "sends in that window"),
    _k("retry_storm.peak.capacity", "requests/s", "that endpoint's capacity"),
    _k("retry_storm.dead_lettered", "count", "deliveries dead-lettered ('dlq' records)"),
    _k(
        "retry_storm.retry_share.overall",
        "share (0-1)",
        "sends with attempt > 1 over all sends",
    ),
    _k(
        "retry_storm.retry_share.during_outage",
        "share (0-1)",
        "the same among sends inside an outage of their endpoint; null when none",
    ),
    _k(
        "retry_storm.retry_share.after_outage",
        "share (0-1)",
        "the same among sends within 60 s after an outage ends; null when none",
    ),
    _k(
        "retry_storm.retry_share.outage_window",
        "share (0-1)",
        "the same during or within 60 s after an outage; null when none",
    ),
    _k("retry_storm.throttled", "count", "'throttle' records (429 answers)"),
    _k("retry_storm.breaker_opened", "count", "circuit breaker openings"),
    _k("retry_storm.budget_exhausted", "count", "retries refused by an exhausted retry budget"),
    _k(
        "retry_storm.double_applied.count",
        "count",
        "versions applied twice at an endpoint with no removal between (ground truth)",
    ),
    _k("retry_storm.double_applied.examples[].promo", "id", "up to 20, earliest first"),
    _k("retry_storm.double_applied.examples[].version", "count", "the version applied twice"),
    _k("retry_storm.double_applied.examples[].endpoint", "id", "where"),
    _k("retry_storm.double_applied.examples[].t", "s (since scenario start)", "the second apply"),
    _k(
        "retry_storm.recovery_seconds",
        "s (since the fault ended)",
        "the longest recovery after a fault window; null when none is measurable or a "
        "storm sustained itself",
    ),
    _k(
        "retry_storm.sustained",
        "boolean",
        "some storm outlived its fault until the run (or the next fault) ended",
    ),
    *(
        _k(f"retry_storm.recovery[].{p}", u, f"per fault window: {d}")
        for p, u, d in (
            ("where", "text", "the endpoint, '<region> <channel>', or 'N endpoints'"),
            ("endpoints", "count", "endpoints the window covers"),
            ("kind", "text", "'outage' or 'fault'"),
            ("cause", "text", "the record's detail (e.g. refuse, hang, error_rate)"),
            ("start", "s (since scenario start)", "fault start"),
            ("end", "s (since scenario start)", "fault end"),
            ("pre_fault.attempt_rate", "attempts/s", "attempt rate before the fault"),
            ("pre_fault.success_rate", "successes/s", "success rate before the fault"),
            (
                "recovery_seconds",
                "s (since the fault ended)",
                "until both rates are back within 10 % of their pre-fault level; null "
                "when sustained or not measurable",
            ),
            ("sustained", "boolean", "never recovered before the run or next fault ended"),
            ("goodput.before", "successes/s", "before the fault"),
            ("goodput.during", "successes/s", "during the fault"),
            ("goodput.after", "successes/s", "in the minutes after it"),
            ("attempts", "count", "attempts sent from the start until recovery"),
            ("wasted_attempts", "count", "of those, timed out (work nobody waited for)"),
            ("wasted_share", "share (0-1)", "wasted_attempts / attempts"),
        )
    ),
    _k("rollbacks[].promo", "id", "the rolled-back promotion (one entry per rollback)"),
    _k("rollbacks[].version", "count", "the promotion version the rollback revokes"),
    _k("rollbacks[].t", "s (since scenario start)", "when the rollback was issued"),
    _k("rollbacks[].deadline", "s (since the rollback)", "time allowed to remove it"),
    _k("rollbacks[].scope.channels[]", "id", "channels in the declared scope"),
    _k("rollbacks[].scope.regions[]", "id", "regions in the declared scope"),
    _k("rollbacks[].scope.stores[]", "id", "stores in the declared scope"),
    _k("rollbacks[].scope_endpoints", "count", "inventory endpoints the scope covers"),
    _k("rollbacks[].verdict", "text", "'pass' when there is no violation, else 'fail'"),
    _k("rollbacks[].violations[].endpoint", "id", "the violating endpoint"),
    _k("rollbacks[].violations[].t", "s (since scenario start)", "when it was found"),
    _k(
        "rollbacks[].violations[].property",
        "text",
        "'not_removed_by_deadline', 'resurrected', 'applied_after_rollback' or "
        "'touched_outside_scope'",
    ),
    _k("rollbacks[].violations[].detail", "text", "what the oracle saw"),
    _k(
        "rollbacks[].leakage_value",
        "money",
        "discount granted at endpoints in scope after the rollback (until a re-publish)",
    ),
    _k("price_consistency.samples", "count", "sampled (sku, time) shelf-price checks"),
    _k("price_consistency.mismatched", "count", "samples with more than one distinct price"),
    _k(
        "price_consistency.mismatch_rate",
        "share (0-1)",
        "mismatched / samples; null without samples",
    ),
    _k("price_consistency.spread_value", "money", "sum over samples of max - min price"),
    _k(
        "price_consistency.by_channel_pair.<pair>",
        "count",
        "samples where channel a and b ('a|b', a <= b; 'a|a': within a) quote differently",
    ),
    _k("price_consistency.examples[].sample", "id", "'sku@sample' (up to 20, widest first)"),
    _k("price_consistency.examples[].sku", "id", "the sampled product"),
    _k("price_consistency.examples[].spread", "money", "max - min price of the sample"),
    _k("price_consistency.examples[].prices[]", "money", "the distinct prices quoted"),
    _k(
        "price_consistency.examples[].by_channel.<channel>[]",
        "money",
        "each channel's distinct prices",
    ),
    _k(
        "price_consistency.opening_window.promos.<promo>.first",
        "s (since scenario start)",
        "first store-local opening of a promotion valid in each store's own zone",
    ),
    _k(
        "price_consistency.opening_window.promos.<promo>.last",
        "s (since scenario start)",
        "last such opening (the westernmost zone)",
    ),
    _k(
        "price_consistency.opening_window.mismatched",
        "count",
        "mismatched samples taken in [first, last) of one of them: by design, not a fault",
    ),
    _k(
        "price_consistency.priced_without_truth.count",
        "count",
        "discounts a till gave for a promotion its endpoint's ground truth did not carry "
        "then (a stale price after a rollback, or one that never arrived)",
    ),
    _k("price_consistency.priced_without_truth.examples[].promo", "id", "up to 20, by time"),
    _k("price_consistency.priced_without_truth.examples[].endpoint", "id", "where it sold"),
    _k(
        "price_consistency.priced_without_truth.examples[].t",
        "s (since scenario start)",
        "the sale",
    ),
    _k("price_consistency.priced_without_truth.examples[].amount", "money", "discount given"),
    _k(
        "leakage_value",
        "money",
        "discount granted after rollbacks, all rollbacks, each discount counted once",
    ),
    _k("funding.<promo>.granted", "money", "discount the promotion granted"),
    _k("funding.<promo>.discounts", "count", "discount records (sale lines discounted)"),
    _k("funding.<promo>.budget", "money", "its funded budget; null when none given"),
    _k("funding.<promo>.overrun", "money", "max(0, granted - budget)"),
    _k("funding.<promo>.utilisation", "share", "granted / budget (above 1 is an overrun)"),
    _k("slos[].name", "text", "the SLO's name, as declared in the scenario"),
    _k("slos[].metric", "path", "dotted summary.json path it reads"),
    _k("slos[].op", "text", "comparison: <, <=, >, >=, ==, !="),
    _k("slos[].threshold", "as the metric", "the declared threshold"),
    _k(
        "slos[].value",
        "as the metric",
        "the figure at metric; null when absent or when status is 'not measured'",
    ),
    _k(
        "slos[].passed",
        "boolean",
        "value op threshold held (false when value is null); null when status is 'not "
        "measured' (no verdict)",
    ),
    _k(
        "slos[].status",
        "text",
        "live/load only, when the run did not measure the figure: 'not measured' (a "
        "shopper figure in a live run, quotes under load: harness/agreement.py); the SLO is "
        "then out of 'passed' and the exit code, a skipped test case in junit.xml",
    ),
    _k(
        "slos[].reason",
        "text",
        "with status only: why, e.g. 'not measured live: leakage_value is summed from "
        "shoppers' sales (discount records); a live run has no shoppers: ...'",
    ),
    _k("slos[].expect", "text", "load only, when declared: 'fail', the documented outcome"),
    _k("slos[].because", "text", "load only: why it is expected to fail (the campaign's)"),
    _k(
        "slos[].trusted",
        "boolean",
        "live/load only: false when a saturated harness component took part in the figure "
        "(harness.untrustworthy); its verdict is then no verdict",
    ),
    _k(
        "passed",
        "boolean",
        "every SLO measured passed (true without SLOs, or when none was measured: "
        "slos[].status); exit code 0 vs 1",
    ),
    # `live` and `load` only: the harness watching itself (harness/selfwatch.py):
    _k(
        "harness.saturated",
        "boolean",
        "live/load only: some component of the harness saturated; exit code 4 whatever "
        "'passed' says",
    ),
    _k("harness.span.from_s", "s (wall, since scenario t=0)", "start of the watched span"),
    _k("harness.span.to_s", "s (wall, since scenario t=0)", "end of the watched span"),
    _k(
        "harness.bounds.lag_s",
        "s (wall)",
        "lag over this for more than 10 % of a window is saturation: 10 % of the smallest "
        "delivery timeout / speed, at least 0.1 s",
    ),
    _k("harness.bounds.window_s", "s (wall)", "the lag windows, from scenario t=0"),
    _k("harness.bounds.cpu_percent", "% (100 = one core)", "Locust CPU saturation level"),
    _k("harness.bounds.cpu_hold_s", "s (wall)", "how long above it is saturation"),
    _k("harness.bounds.basis", "text", "how lag_s was derived"),
    _k(
        "harness.loop_lag[].component",
        "id",
        "'estate' (or 'estate-shard-<i>') or 'orchestrator'; in-process they share a loop",
    ),
    _k("harness.loop_lag[].samples", "count", "lag samples kept (50 ms apart, last hour)"),
    _k(
        "harness.loop_lag[].percentiles_from_s",
        "s (wall, since scenario t=0)",
        "p50/p99/max cover from here (a run over an hour); saturation covers the whole span",
    ),
    _k("harness.loop_lag[].p50_s", "s (wall)", "median event-loop lag"),
    _k("harness.loop_lag[].p99_s", "s (wall)", "99th percentile event-loop lag"),
    _k("harness.loop_lag[].max_s", "s (wall)", "largest event-loop lag"),
    _k("harness.loop_lag[].saturated", "boolean", "some window was late past the bound too long"),
    _k(
        "harness.cpu[].process",
        "id",
        "load only: 'locust', 'locust master', 'locust worker <i>', 'stack (serve)', "
        "'stack child process <i>' (an estate shard) or 'machine (all processes)' (the "
        "whole machine, up to 100 x cores)",
    ),
    _k("harness.cpu[].pid", "integer", "load only: its process id"),
    _k("harness.cpu[].samples", "count", "load only: CPU samples (one a second)"),
    _k("harness.cpu[].mean_percent", "% (100 = one core)", "load only: mean CPU"),
    _k("harness.cpu[].max_percent", "% (100 = one core)", "load only: highest sample"),
    _k(
        "harness.cpu[].judged",
        "boolean",
        "load only: held to the CPU bound (Locust's processes; the stack is judged by lag)",
    ),
    _k("harness.cpu[].saturated", "boolean", "load only: above the bound for the hold time"),
    _k("harness.saturations[].component", "id", "the saturated component or process"),
    _k("harness.saturations[].measure", "text", "'loop_lag' or 'cpu'"),
    _k("harness.saturations[].from_s", "s (wall, since scenario t=0)", "when it began"),
    _k("harness.saturations[].to_s", "s (wall, since scenario t=0)", "when it ended"),
    _k("harness.saturations[].scenario_from", "s (since scenario start)", "from_s x speed"),
    _k("harness.saturations[].scenario_to", "s (since scenario start)", "to_s x speed"),
    _k(
        "harness.saturations[].peak",
        "s (lag) or % (cpu)",
        "the worst lag or CPU sample in the span",
    ),
    _k(
        "harness.untrustworthy[]",
        "path",
        "SLO/gate figures a saturated component took part in (their slos[].trusted false)",
    ),
    # `live --sut` only (harness/sut/run.py, harness/sut/truth.py):
    _k("sut", "text", "--sut only: the system under test (its driver's name)"),
    _k(
        "not_measured[]",
        "path",
        "--sut only: figures this run could not measure (they need the system's own view "
        "or internals); their values are null, never zero",
    ),
    # `promoharness live` only (harness/live_run.py faithful_summary, harness/faithful.py):
    _k("live.speed", "ratio", "live only: the speed run (scenario s per wall s)"),
    _k(
        "live.speed_source",
        "text",
        "live only: '--speed' (asked) or 'faithful' (no --speed: the faithful speed chosen)",
    ),
    _k(
        "live.faithful_speed",
        "ratio",
        "live only: the fastest speed at which the harness adds under `fraction` of every "
        "modelled duration on this machine (null when nothing limits it)",
    ),
    _k("live.forced", "boolean", "live only: run above the faithful speed (--force)"),
    _k("live.limited_by", "text", "live only: the modelled duration that sets it"),
    _k("live.limit_seconds", "s (scenario)", "live only: that duration"),
    _k("live.fraction", "share (0-1)", "live only: overhead allowed against each duration"),
    _k("live.calibration.twin_speed", "ratio", "live only: the calibration twin's speed"),
    _k(
        "live.calibration.isolated_median_ms",
        "ms (wall)",
        "live only: median cost of one delivery on an idle stack, round trip subtracted",
    ),
    _k(
        "live.calibration.burst_p95_ms",
        "ms (wall)",
        "live only: p95 time on the wire inside a burst as wide as the fan-out",
    ),
    _k("live.calibration.burst", "count", "live only: deliveries in the calibration burst"),
    _k("live.calibration.burst_wall_s", "s (wall)", "live only: how long the burst took"),
    _k("live.calibration.loop_lag_ms", "ms (wall)", "live only: worst loop lag in the burst"),
    _k(
        "live.calibration.burst_delay_p95_s",
        "s (wall)",
        "live only: p95 from a send decision to its result in the burst (not in the formula)",
    ),
    # `promoharness live` only: the sim-vs-live table (harness/agreement.py):
    _k("sim_vs_live.tolerance", "share (0-1)", "live only: a live figure within it agrees"),
    _k(
        "sim_vs_live.figures[].figure",
        "path",
        "live only: a headline figure, or a rollback's verdict (rollbacks.N.verdict)",
    ),
    _k("sim_vs_live.figures[].sim", "as the figure", "live only: its virtual-time value"),
    _k(
        "sim_vs_live.figures[].live",
        "as the figure",
        "live only: its live value (null when not measured live)",
    ),
    _k("sim_vs_live.figures[].live_over_sim", "ratio", "live only: live / sim (null if none)"),
    _k(
        "sim_vs_live.figures[].status",
        "text",
        "live only: 'within tolerance', 'out of tolerance', 'not measured live' (summed "
        "from shoppers' sales or quotes: a live run has no shoppers) or 'not measured'",
    ),
    _k(
        "sim_vs_live.slos_left_out[]",
        "text",
        "live only: SLOs on figures not measured live, left out of the 'passed' row",
    ),
    _k(
        "sim_vs_live.out_of_tolerance[]",
        "path",
        "live only: the figures out of tolerance, claimed or not",
    ),
    _k("sim_vs_live.not_measured_live[]", "path", "live only: the figures not measured live"),
    _k(
        "sim_vs_live.figures[].claimed",
        "boolean",
        "live only: a figure agreement is judged on (T95, T99, acked T95, amplification, "
        "dead letters, rollback and SLO verdicts); the others are reported",
    ),
    _k(
        "sim_vs_live.agrees",
        "boolean",
        "live only: every claimed figure compared is within tolerance",
    ),
    # `promoharness load` only (harness/load/run.py, harness/load/figures.py):
    _k("load.campaign", "text", "load only: the campaign's name"),
    _k("load.speed", "ratio", "load only: scenario time compressed this many times"),
    _k("load.locust_exit", "integer", "load only: Locust's exit code"),
    _k("load.requests", "count", "load only: shopper requests (price checks, checkouts)"),
    _k("load.checkouts", "count", "load only: shopper checkout requests"),
    _k("load.failures", "count", "load only: failed shopper requests"),
    _k("load.failures_by_reason.<reason>", "count", "load only: failures per reason"),
    _k("load.error_rate", "share (0-1)", "load only: non-price failures / requests"),
    _k("load.stale_prices", "count", "load only: priced responses the oracle rejected"),
    _k("load.stale_price_rate", "share (0-1)", "load only: stale_prices / requests"),
    _k("load.missed_arrivals", "count", "load only: arrivals the pacer could not start"),
    _k(
        "load.missed_arrival_rate",
        "share (0-1)",
        "load only: missed / (requests + missed)",
    ),
    _k("load.p50_ms", "ms", "load only: shopper response time, median"),
    _k("load.p95_ms", "ms", "load only: shopper response time, 95th percentile"),
    _k("load.p99_ms", "ms", "load only: shopper response time, 99th percentile"),
    _k("load.max_ms", "ms", "load only: slowest shopper response"),
    _k("load.rps_mean", "requests/s", "load only: mean shopper rate (wall seconds)"),
    _k("load.rps_peak", "requests/s", "load only: busiest wall second"),
    _k("load.rate_target_peak", "requests/s", "load only: the arrival rate asked for at peak"),
    _k("load.users_max", "count", "load only: Locust users allowed"),
    _k("load.workers", "count", "load only: Locust worker processes"),
    _k("load.operator_steps", "count", "load only: timeline requests sent to the API"),
    _k("load.operator_refused", "count", "load only: of those, refused"),
    _k("load.callbacks", "count", "load only: channel callback requests"),
    _k("load.callback_failures", "count", "load only: of those, failed"),
    _k(
        "load.stale_attribution.samples",
        "count",
        "load only: wrong prices with an endpoint and time",
    ),
    _k(
        "load.stale_attribution.explained",
        "count",
        "load only: of those, the model alone accounts for the endpoint lacking the change "
        "at the answer: an outage over the whole window since its target, or the last "
        "attempt reached it on time and was refused/hung/lost (retry not yet due, or "
        "dead-lettered), still in modelled service, or accepted for a later pick-up",
    ),
    _k(
        "load.stale_attribution.unexplained",
        "count",
        "load only: the others (not received in time, received late, retry overdue, "
        "answered ok but changed late, not sent, changed before the answer, no target, "
        "not a delivery delay): the harness, not the model",
    ),
    _k("load.stale_attribution.by_cause.<reason>", "count", "load only: wrong prices per cause"),
    _k(
        "load.stale_attribution.endpoints",
        "count",
        "load only: (endpoint, promotion, reason) with wrong prices",
    ),
    _k(
        "load.stale_attribution.tolerance_s",
        "s (scenario)",
        "load only: a hop between processes (50 ms wall)",
    ),
    _k(
        "load.stale_attribution.worst[].endpoint",
        "id",
        "load only: up to 20, most unexplained first",
    ),
    _k("load.stale_attribution.worst[].promo", "id", "load only: the promotion priced wrong"),
    _k("load.stale_attribution.worst[].reason", "text", "load only: the oracle's reason"),
    _k("load.stale_attribution.worst[].samples", "count", "load only: wrong prices there"),
    _k(
        "load.stale_attribution.worst[].explained",
        "count",
        "load only: of those, explained by the model",
    ),
    _k("load.stale_attribution.worst[].unexplained", "count", "load only: of those, unexplained"),
    _k(
        "load.stale_attribution.worst[].causes",
        "text",
        "load only: 'cause count, ...', commonest first",
    ),
    _k(
        "load.stale_attribution.worst[].first_at",
        "s (since scenario start)",
        "load only: the first wrong price",
    ),
    _k(
        "load.stale_attribution.worst[].last_at",
        "s (since scenario start)",
        "load only: the last wrong price",
    ),
)


def concrete_paths(summary: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every leaf path of a summary: dict keys as they are, list items as ``[]``."""
    if isinstance(summary, Mapping):
        for key, value in summary.items():
            yield from concrete_paths(value, (*prefix, str(key)))
    elif isinstance(summary, list):
        for item in summary:
            yield from concrete_paths(item, (*prefix, "[]"))
    else:
        yield prefix


def _matches(pattern: tuple[str, ...], path: tuple[str, ...]) -> bool:
    return len(pattern) == len(path) and all(
        p == s or (p in PLACEHOLDERS and s != "[]") for p, s in zip(pattern, path, strict=True)
    )


def documented(path: tuple[str, ...]) -> Key | None:
    """The entry of ``KEYS`` a concrete leaf path falls under, or None."""
    return next((k for k in KEYS if _matches(k.path, path)), None)


def undocumented(summary: Mapping[str, Any]) -> list[str]:
    """Leaf paths of ``summary`` that no entry documents (dotted, for messages)."""
    return sorted({".".join(p) for p in concrete_paths(summary) if documented(p) is None})


def render_markdown() -> str:
    """docs/summary-json.md: one table row per key, grouped by top-level key."""
    lines = [
        "# summary.json keys",
        "",
        "<!-- Generated from harness/metrics/keys.py; do not edit by hand. Regenerate with",
        "     `python -m harness.metrics.keys > docs/summary-json.md`;",
        "     tests/report/test_summary_keys.py fails when this file drifts. -->",
        "",
        "Every run (`run`, `live`, `load`) writes `summary.json`; CI and scripts read it, so",
        "its keys are a contract. `<channel>`, `<promo>` and `<pair>` stand for any channel,",
        "promotion id or channel pair; `[]` is each item of a list. Times are seconds of",
        "scenario time; money is in the catalog's currency; a figure that does not exist",
        "(a share never reached, no samples) is `null`. Floats are rounded to 6 decimals.",
        "SLOs name figures by dotted path, e.g. `propagation.by_channel.pos.t95`.",
        "",
    ]
    group = None
    for key in KEYS:
        top = key.path[0]
        if top != group:
            group = top
            lines += ["", f"## `{top}`", "", "| key | unit | definition |", "| --- | --- | --- |"]
        lines.append(f"| `{key.dotted}` | {key.unit} | {key.definition.replace('|', '&#124;')} |")
    return "\n".join(lines).replace("\n\n\n", "\n\n") + "\n"


if __name__ == "__main__":  # python -m harness.metrics.keys > docs/summary-json.md
    import sys

    if len(sys.argv) > 1:  # check a summary.json: print what no entry documents
        from pathlib import Path

        missing = undocumented(json.loads(Path(sys.argv[1]).read_text(encoding="utf-8")))
        print("\n".join(missing) or "every key documented")
        raise SystemExit(1 if missing else 0)
    sys.stdout.write(render_markdown())
