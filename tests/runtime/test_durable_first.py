"""Durable first: an event the journal refuses changes nothing.

The live stack (simulators, LiveRuntime, API, all real, on loopback) plays a small
operator sequence — create, submit, validate, approve, pause, publish, resume, rollback,
schedule, end, settle, a dead-letter replay — while the store refuses the FIRST write of
every event, whatever it is: each operator command, each validation answer, delivery
result, webhook ack, marketplace poll and timer. The refusal is SQLite's own (the
connection is read-only for that one write), so the store's rollback path is the real one.

Each refused operator command must raise ``NotDurable`` and leave the orchestrator's
views and the journal exactly as they were (the client then sends it again); each refused
event the runtime made itself is handed in again later; a refused webhook is a 503 to
the web shop's adapter, which posts it again (the simulated adapters retry a 5xx answer,
as real ones do: an idempotent endpoint never acknowledges a duplicate, so a lost ack
would be lost for good). At the end, memory, the journal,
the audit trail and a core rebuilt from the journal (what a restart does) agree, and the
outcome equals that of the same sequence with no refusals.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from harness.domain.eventlog import Record
from harness.domain.promotion import Promotion
from harness.orchestrator import events as ev
from harness.orchestrator.commands import WriteRecord
from harness.orchestrator.core import Orchestrator, UnknownPromotion
from harness.runtime import codec
from harness.runtime.live import EndpointDirectory, LiveClock, LiveRuntime, Unjournalable
from harness.runtime.store import NotDurable, Store
from harness.runtime.world import World, build_world
from harness.scenario import load_scenario
from harness.service import KeyRing, create_app
from harness.stack import HOST, fetch_truth, free_port, start_simulators
from simulators.apps import run_sim_server

SCENARIO = Path(__file__).with_name("durable.yaml")
SPEED = 20.0  # scenario seconds per wall second
PROMOS = ("D1", "D2")


class RefusingStore(Store):
    """A store whose first write of each distinct event fails, as a full disk would."""

    def __init__(self, path: Path, refuse: bool) -> None:
        super().__init__(path)
        self.refuse = refuse
        self.seen: set[str] = set()
        self.refused: list[str] = []

    def append(self, t: float, event: str, records: Iterable[Record]) -> int:
        if not self.refuse or event in self.seen:
            return super().append(t, event, records)
        self.seen.add(event)
        self.refused.append(event)
        self._db.execute("PRAGMA query_only=ON")  # SQLite itself refuses the write
        try:
            return super().append(t, event, records)
        finally:
            self._db.execute("PRAGMA query_only=OFF")


def promotion(promo: str, channels: list[str]) -> Promotion:
    return Promotion.model_validate(
        {
            "id": promo,
            "name": f"{promo}: 10% off everything",
            "validity": {
                "start": "2026-11-28T00:00:00",
                "end": "2026-11-29T00:00:00",
                "timezone": "America/New_York",
            },
            "scope": {"channels": channels},
            "benefit": {"type": "percent_off", "percent": 10},
        }
    )


def snapshot(orch: Orchestrator) -> dict[str, Any]:
    """Everything the orchestrator's read-only views say about the test's promotions."""
    out: dict[str, Any] = {"dlq": tuple(orch.dead_letters())}
    for promo in PROMOS:
        try:
            out[promo] = (
                orch.status(promo),
                orch.promotion(promo).version,
                tuple(orch.deliveries(promo)),
            )
        except UnknownPromotion:
            out[promo] = None
    return out


def outcome_of(snap: dict[str, Any]) -> dict[str, Any]:
    """What must not depend on refusals: states, and each endpoint's op, version, state."""
    return {
        promo: (
            snap[promo][0],
            sorted((d.endpoint, d.op, d.version, d.state) for d in snap[promo][2]),
        )
        for promo in PROMOS
    }


@dataclass
class Run:
    final: dict[str, Any]
    refused_commands: list[str]
    refused_writes: list[str]
    journal: list[tuple[int, float, str]]
    records: list[tuple[int, Record]]
    truth: list[Record]
    world: World


class Operator:
    """Sends operator commands as a client would: on NotDurable, checks that nothing
    changed and sends the same command again."""

    def __init__(self, runtime: LiveRuntime, store: Store) -> None:
        self.runtime, self.store = runtime, store
        self.refused: list[str] = []

    async def __call__(self, event: Any) -> None:
        before, length = snapshot(self.runtime.orchestrator), self.store.journal_length()
        records = self.store.record_count()
        try:
            await self.runtime.submit(event)
        except NotDurable:
            assert snapshot(self.runtime.orchestrator) == before, type(event).__name__
            assert (self.store.journal_length(), self.store.record_count()) == (length, records)
            self.refused.append(type(event).__name__)
            await self.runtime.submit(event)

    async def until(self, what: str, check: Callable[[Orchestrator], bool]) -> None:
        # Only guards against a hang: the conditions are reached by events, not by time.
        deadline = time.monotonic() + 120
        while not check(self.runtime.orchestrator):
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            await asyncio.sleep(0.02)


def _acked_except(promo: str, channel: str) -> Callable[[Orchestrator], bool]:
    def check(orch: Orchestrator) -> bool:
        views = [d for d in orch.deliveries(promo) if d.channel != channel]
        return bool(views) and all(d.state == "acked" for d in views)

    return check


async def operate(op: Operator) -> None:
    status = lambda promo, *want: lambda o: o.status(promo) in want  # noqa: E731
    await op(ev.CreateDraft(promotion("D1", ["pos", "ecommerce", "loyalty", "marketplace"])))
    await op(ev.Submit("D1"))
    await op(ev.Validate("D1"))
    await op.until("D1 validated", status("D1", "validated"))
    await op(ev.Approve("D1", actor="alice"))
    await op(ev.Pause("D1", "pos"))
    await op(ev.Publish("D1", ev.TargetScope()))
    await op.until("D1 off the stores", _acked_except("D1", "pos"))
    await op(ev.Resume("D1", "pos"))
    await op.until("D1 active", status("D1", "active"))
    await op(ev.Rollback("D1", ev.TargetScope(), deadline=600.0))
    await op.until("D1 rolled back", status("D1", "rolled_back"))

    await op(ev.CreateDraft(promotion("D2", ["pos", "loyalty"])))
    await op(ev.Submit("D2"))
    await op(ev.Validate("D2"))
    await op.until("D2 validated", status("D2", "validated"))
    await op(ev.Approve("D2"))
    await op(ev.Schedule("D2", op.runtime.now() + 20.0, ev.TargetScope()))
    await op.until("D2 published on schedule", status("D2", "active"))
    await op(ev.End("D2"))
    await op(ev.Settle("D2"))
    await op(ev.ReplayDeadLetters())


async def play(db: Path, refuse: bool) -> Run:
    world = build_world(load_scenario(SCENARIO))
    store = RefusingStore(db, refuse)
    clock = LiveClock(speed=SPEED)
    api_port = free_port()
    sim = await start_simulators(world, api_url=f"http://{HOST}:{api_port}", clock=clock)
    polled = frozenset(m.id for m in world.delivery_models if m.ack_via == "poll")
    runtime = LiveRuntime(
        world.orchestrator,
        store,
        EndpointDirectory(sim.url, polled),
        clock,
        poll_seconds=5.0,
        defer_seconds=0.05,
    )
    await runtime.start()
    api = await run_sim_server(create_app(runtime, KeyRing.demo()), api_port)
    op = Operator(runtime, store)
    session = aiohttp.ClientSession()
    try:
        await operate(op)
        truth = await fetch_truth(session, sim.url)
        final = snapshot(runtime.orchestrator)
    finally:
        await session.close()
        await api.stop()
        await runtime.close()
        await sim.stop()
    run = Run(
        final, op.refused, store.refused, list(store.journal()), store.records(), truth, world
    )
    store.close()
    return run


def rebuilt(
    world: World, journal: list[tuple[int, float, str]]
) -> tuple[Orchestrator, list[Record]]:
    """A fresh core fed the journal, as a restart does: the core and the records it wrote."""
    orch = world.orchestrator(random.Random(f"{world.seed}:orchestrator"))
    records: list[Record] = []
    for _, t, text in journal:
        records += [c.record for c in orch.handle(codec.decode(text), t) if type(c) is WriteRecord]
    return orch, records


def applied_once(truth: list[Record]) -> Counter[tuple[str, str, int]]:
    return Counter((r.endpoint, r.promo, r.version) for r in truth if r.kind == "applied")


def test_a_refused_write_at_every_step_changes_nothing(tmp_path: Path) -> None:
    clean = asyncio.run(play(tmp_path / "clean.db", refuse=False))
    faulty = asyncio.run(play(tmp_path / "faulty.db", refuse=True))

    # Every event was refused once: every operator command, and events of every kind the
    # runtime makes (validation answers, results, webhook and poll acks, timers).
    assert faulty.refused_commands == [
        "CreateDraft", "Submit", "Validate", "Approve", "Pause", "Publish", "Resume",
        "Rollback", "CreateDraft", "Submit", "Validate", "Approve", "Schedule", "End",
        "Settle", "ReplayDeadLetters",
    ]  # fmt: skip
    kinds = Counter(codec.decode(text).__class__.__name__ for text in faulty.refused_writes)
    assert {"ValidationResult", "DeliveryResult", "Ack", "TimerFired"} <= set(kinds)
    assert any('"detail":"poll"' in t for t in faulty.refused_writes)
    assert any('"detail":"webhook"' in t for t in faulty.refused_writes)
    journal = {text for _, _, text in faulty.journal}
    assert set(faulty.refused_writes) <= journal  # each made it in on its second try
    assert len(journal) == len(faulty.journal)  # ...and only once

    # Memory, journal, audit trail and a restarted core agree.
    orch, records = rebuilt(faulty.world, faulty.journal)
    assert snapshot(orch) == faulty.final
    assert records == [r for _, r in faulty.records]
    assert [seq for seq, _ in faulty.records] == list(range(1, len(faulty.records) + 1))

    # The refusals changed nothing that matters: the same outcome as without them, at the
    # orchestrator and at the endpoints, where no version was applied twice.
    assert outcome_of(faulty.final) == outcome_of(clean.final)
    assert faulty.final["D1"][0] == "rolled_back" and faulty.final["D2"][0] == "settled"
    assert applied_once(faulty.truth) == applied_once(clean.truth)
    assert set(applied_once(faulty.truth).values()) == {1}


def test_a_value_the_journal_cannot_hold_is_refused_before_anything_changes(
    tmp_path: Path,
) -> None:
    world = build_world(load_scenario(SCENARIO))
    store = Store(tmp_path / "state.db")

    async def main() -> None:
        runtime = LiveRuntime(
            world.orchestrator, store, EndpointDirectory("http://127.0.0.1:9"), LiveClock()
        )
        await runtime.start()
        try:
            huge = promotion("D1", ["pos"]).model_copy(update={"version": 2**64})
            with pytest.raises(
                Unjournalable, match=r"promotion\.version: integer 18446744073709551616"
            ):
                await runtime.submit(ev.CreateDraft(huge))
            with pytest.raises(Unjournalable, match="deadline: nan is not a finite number"):
                await runtime.submit(ev.Rollback("D1", deadline=float("nan")))
            with pytest.raises(UnknownPromotion):
                runtime.orchestrator.status("D1")  # not even created in memory
            assert store.journal_length() == 0 and store.record_count() == 0
            await runtime.submit(ev.CreateDraft(promotion("D1", ["pos"])))
            assert runtime.orchestrator.status("D1") == "draft"
        finally:
            await runtime.close()

    asyncio.run(main())
    assert [codec.decode(t) for _, _, t in store.journal()] == [
        ev.CreateDraft(promotion("D1", ["pos"]))
    ]
    store.close()


def test_a_write_sqlite_refuses_mid_transaction_rolls_the_core_back(tmp_path: Path) -> None:
    """An integer that passes the event check but not SQLite (a record's column) fails
    inside the transaction: the core is rebuilt from the journal, nothing stays."""
    world = build_world(load_scenario(SCENARIO))
    store = Store(tmp_path / "state.db")

    async def main() -> None:
        runtime = LiveRuntime(
            world.orchestrator, store, EndpointDirectory("http://127.0.0.1:9"), LiveClock()
        )
        await runtime.start()
        try:
            await runtime.submit(ev.CreateDraft(promotion("D1", ["pos"])))
            before = snapshot(runtime.orchestrator)
            real_append = store.append

            def overflow(t: float, event: str, records: Iterable[Record]) -> int:
                # The records as the core made them, one carrying a 65-bit version.
                rows = [r._replace(version=2**64) for r in records]
                return real_append(t, event, rows)

            store.append = overflow  # type: ignore[method-assign]
            with pytest.raises(NotDurable, match="too large"):
                await runtime.submit(ev.Submit("D1"))
            store.append = real_append  # type: ignore[method-assign]
            assert snapshot(runtime.orchestrator) == before
            assert runtime.orchestrator.status("D1") == "draft"
            await runtime.submit(ev.Submit("D1"))
            assert runtime.orchestrator.status("D1") == "submitted"
        finally:
            await runtime.close()

    asyncio.run(main())
    assert store.journal_length() == 2
    store.close()
