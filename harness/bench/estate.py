"""``promoharness bench estate``: deliveries/s the simulated estate absorbs with 1 and 2 shards.

Each measurement starts the estate as N shard processes (``harness/shards.py``, the
``--estate-shards`` machinery) and drives it from load-generator processes of its own:
each generator holds keep-alive connections, each connection bound to one shard and
cycling over that shard's stores, POSTing one delivery (an apply of a real promotion, a
fresh version each time) as soon as the previous one is answered: closed loop, a fixed
number of deliveries in flight, as the orchestrator's live runtime keeps at most 64.

The generator is a bare asyncio HTTP/1.1 client (pre-encoded requests, a
Content-Length read), several times cheaper per request than the server, and it runs in
``generators`` processes. It reports its own CPU over the measured window, and the shards'
CPU is read from /proc: the figures say whether the estate (shards near 100% of a core)
or the generator was the limit, and the estate's CPU-seconds per delivery give how far
shards scale on a bigger host (one shard per free core).

The estate is stores only (deliveries to POS are the bulk of any fan-out), fixed 0.1 s
service times at a speed of 1000x so that the service sleeps (0.1 ms) do not bound it,
no faults and no errors: what is measured is the harness's own cost per delivery.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SPEED = 1000.0  # scenario seconds per wall second: 0.1 s of service is 0.1 ms
ROOT = Path(__file__).resolve().parents[2]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def bench_scenario(stores: int) -> Any:
    """A scenario of ``stores`` healthy stores and one promotion to deliver."""
    from harness.scenario import Scenario

    healthy = {"error_rate": 0, "timeout_rate": 0, "lost_ack_rate": 0}
    doc = {
        "name": "bench-estate",
        "seed": 1,
        "start": "2026-11-28T14:00:00Z",
        "duration": 86_400,
        "estate": {
            "stores": stores,
            "products": 20,
            "regions": [
                {
                    "name": "east",
                    "timezone": "America/New_York",
                    "batch_share": 0.0,
                    "link": "healthy-pos",
                }
            ],
        },
        "endpoints": {
            ch: {"latency": {"kind": "fixed", "mean": 0.1}, "capacity": 4, **healthy}
            for ch in ("erp", "pos", "ecommerce", "loyalty", "marketplace")
        },
        "promotions": [
            {
                "id": "P1",
                "name": "10% off everything",
                "validity": {
                    "start": "2026-11-28T00:00:00",
                    "end": "2026-11-29T00:00:00",
                    "timezone": "America/New_York",
                },
                "scope": {"channels": ["pos"]},
                "benefit": {"type": "percent_off", "percent": 10},
            }
        ],
        "timeline": [{"at": 0, "action": "create", "promo": "P1"}],
        "traffic": {"kind": "none"},
    }
    return Scenario.model_validate(doc)


@dataclass(frozen=True)
class Target:
    """One connection's work: a shard's host and port and the stores it serves."""

    host: str
    port: int
    stores: tuple[str, ...]


# --- the generator process ---------------------------------------------------------------


def generate(
    targets: list[Target], payload: str, start: float, seconds: float, tag: int
) -> dict[str, Any]:
    """Run the connections of ``targets`` until ``start + seconds`` (wall time); count the
    answers completed inside [start, start + seconds] and the CPU spent there."""
    return asyncio.run(_generate(targets, payload, start, seconds, tag))


async def _generate(
    targets: list[Target], payload: str, start: float, seconds: float, tag: int
) -> dict[str, Any]:
    end = start + seconds
    counts: dict[int, int] = {}
    cpu: dict[str, float] = {}

    async def window() -> None:
        await asyncio.sleep(max(0.0, start - time.time()))
        cpu["start"] = time.process_time()
        await asyncio.sleep(max(0.0, end - time.time()))
        cpu["end"] = time.process_time()

    async def connection(index: int, target: Target) -> None:
        reader, writer = await asyncio.open_connection(target.host, target.port)
        version = 0
        try:
            while time.time() < end:
                store = target.stores[(index + version) % len(target.stores)]
                version += 1
                body = (
                    f'{{"delivery_id":"g{tag}c{index}v{version}","idempotency_key":'
                    f'"g{tag}c{index}v{version}","op":"apply","promo":"P1",'
                    f'"version":{version},"payload":{payload}}}'
                ).encode()
                head_out = (
                    f"POST /endpoints/{store}/deliveries HTTP/1.1\r\nHost: {target.host}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                )
                writer.write(head_out.encode() + body)
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                await reader.readexactly(length)
                now = time.time()
                if start <= now <= end:
                    status = int(head[9:12])
                    counts[status] = counts.get(status, 0) + 1
        finally:
            writer.close()

    jobs = [connection(i, t) for i, t in enumerate(targets)]
    await asyncio.gather(window(), *jobs)
    return {
        "answers": counts,
        "cpu_s": cpu.get("end", 0.0) - cpu.get("start", 0.0),
    }


# --- one measurement ----------------------------------------------------------------------


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux /proc; 0 elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _result(proc: subprocess.Popen[bytes], timeout: float) -> dict[str, Any]:
    """A generator's JSON answer (stdin already closed, so no ``communicate``)."""
    assert proc.stdout is not None
    proc.wait(timeout)
    return dict(json.loads(proc.stdout.read() or b"{}"))


def measure(
    shards: int,
    *,
    stores: int = 600,
    seconds: float = 8.0,
    generators: int = 2,
    connections: int = 64,
    warmup: float = 1.5,
) -> dict[str, Any]:
    """Deliveries/s ``shards`` estate processes absorb (see the module docstring)."""
    from harness.runtime.world import build_world
    from harness.shards import ShardSet

    scenario = bench_scenario(stores)
    world = build_world(scenario, None)
    payload = json.dumps(scenario.promotions[0].model_dump(mode="json", by_alias=True))
    started = ShardSet.start(world, shards, speed=SPEED)
    try:
        targets = []
        for shard in started.shards:
            host, _, port = shard.url.removeprefix("http://").partition(":")
            mine = tuple(mid for mid in shard.endpoints if started.channel_of[mid] == "pos")
            targets.append(Target(host, int(port), mine))
        per_conn = [targets[i % len(targets)] for i in range(connections)]
        groups = [per_conn[g::generators] for g in range(generators)]
        start = time.time() + warmup + 2.0  # the generators' own start-up, then warm-up
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "harness.bench.estate"],
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
            for _ in groups
        ]
        try:
            for g, (proc, group) in enumerate(zip(procs, groups, strict=True)):
                job = {
                    "targets": [dataclasses.astuple(t) for t in group],
                    "payload": payload,
                    "start": start,
                    "seconds": seconds,
                    "tag": g,
                }
                assert proc.stdin is not None
                proc.stdin.write(json.dumps(job).encode())
                proc.stdin.close()
            time.sleep(max(0.0, start - time.time()))
            before = [_cpu_seconds(s.proc.pid) for s in started.shards]
            time.sleep(max(0.0, start + seconds - time.time()))
            after = [_cpu_seconds(s.proc.pid) for s in started.shards]
            results = [_result(p, seconds + 120) for p in procs]
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(5)
    finally:
        started.stop()
    answers: dict[int, int] = {}
    for result in results:
        for status, n in result["answers"].items():
            answers[int(status)] = answers.get(int(status), 0) + n
    total = sum(answers.values())
    shard_cpu = [b - a for a, b in zip(before, after, strict=True)]
    generator_cpu = [r["cpu_s"] for r in results]
    return {
        "shards": shards,
        "deliveries": total,
        "per_second": total / seconds,
        "answers": dict(sorted(answers.items())),
        "seconds": seconds,
        "shard_cpu_share": [c / seconds for c in shard_cpu],
        "generator_cpu_share": [c / seconds for c in generator_cpu],
        "shard_cpu_ms_per_delivery": 1000 * sum(shard_cpu) / total if total else None,
        "generator_cpu_ms_per_delivery": 1000 * sum(generator_cpu) / total if total else None,
    }


def bench_estate(
    *,
    stores: int = 600,
    seconds: float = 8.0,
    generators: int = 2,
    connections: int = 64,
    rounds: int = 1,
) -> dict[str, Any]:
    """1 shard and 2 shards, ``rounds`` alternating runs each (best of each side)."""
    runs: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
    for _ in range(rounds):
        for shards in (1, 2):
            runs[shards].append(
                measure(
                    shards,
                    stores=stores,
                    seconds=seconds,
                    generators=generators,
                    connections=connections,
                )
            )
    best = {n: max(rs, key=lambda r: r["per_second"]) for n, rs in runs.items()}
    one, two = best[1]["per_second"], best[2]["per_second"]
    cost = best[1]["shard_cpu_ms_per_delivery"]
    return {
        "one": best[1],
        "two": best[2],
        "ratio": two / one if one else float("nan"),
        "cores": os.cpu_count() or 1,
        # A shard is one Python process: it absorbs at most one core's worth.
        "per_core": 1000.0 / cost if cost else None,
        "runs": runs,
    }


def main() -> None:
    """``python -m harness.bench.estate``: one generator; its job as JSON on stdin."""
    job = json.loads(sys.stdin.buffer.read())
    targets = [Target(h, p, tuple(stores)) for h, p, stores in job["targets"]]
    result = generate(targets, job["payload"], job["start"], job["seconds"], job["tag"])
    sys.stdout.write(json.dumps(result))


if __name__ == "__main__":
    main()
