"""Estate shards: the simulated estate split over N worker processes (127.0.0.1 by default).

``--estate-shards N`` (``serve``, ``live``, ``load``, ``estate``) starts N shard processes
(``python -m harness.shards``). Each builds the same ``World`` from the scenario and seed
(the build is deterministic) and serves only its slice (``simulators.served.EstateSlice``):
endpoint i of ``world.delivery_models`` belongs to shard ``i % N`` (``assign``), so the
stores and the central channels (ERP, web, loyalty, marketplace) spread evenly. Every
shard keeps the same scenario clock: the parent sends one wall-clock epoch and speed to
all of them once every shard is listening ("go"), and each turns it into its own
``time.monotonic()`` origin.

Whoever needs an endpoint finds its shard here: the orchestrator's ``ShardDirectory``,
the estate front (``harness/estate_front.py``: listing, truth, faults, redirects), the
load's shopper map (``ShardSet.endpoint_urls``). Ground truth is each shard's records,
merged by ``merge_truth`` into one log ordered by t (ties: shard, then arrival).

A shard dies with its parent: it reads its stdin, the write end of which only the
parent holds, and stops when it closes (a parent killed by SIGKILL included). A shard
that fails to start makes ``ShardSet.start`` raise ``ShardError``: one line, exit 2.
N = 0 is the in-process estate (today's default); N = 1 is one separate estate process.

On several machines: ``--shard-via CMD`` (repeatable; shard i uses the ``i % len``-th)
prefixes the shard's command, so ``--shard-via "ssh b.example"`` runs
``ssh b.example python3 -m harness.shards`` there (promoharness installed at the same
commit); the stdin/stdout protocol above is unchanged through ssh, and a shard still dies
when its parent does (ssh closes its stdin). ``--bind ADDR`` is the address the shard
servers listen on (sent in the spec): a shard bound to 0.0.0.0 reports its machine's
name (``socket.getfqdn()``) in its URL. Shards share a wall-clock epoch, so the machines'
clocks must agree (NTP). Any bind address other than 127.0.0.1 needs an explicit admin
token (``check_network``): ground truth and faults would be open to the network.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.inputs import InputError
from harness.runtime.live import EndpointDirectory, run

if TYPE_CHECKING:
    from harness.domain.eventlog import Record
    from harness.runtime.world import World
    from harness.scenario import Scenario
    from simulators.served import Fault

HOST = "127.0.0.1"
OPTION = "--estate-shards"
VIA_OPTION = "--shard-via"
BIND_OPTION = "--bind"
START_TIMEOUT_S = 180.0  # a busy 2-core machine builds 600 stores N times at once
ROOT = Path(__file__).resolve().parents[1]
# How a shard process starts (a test swaps in one that fails to start).
SHARD_COMMAND = (sys.executable, "-m", "harness.shards")
# After a --shard-via prefix: the far side's own interpreter, found on its PATH.
REMOTE_COMMAND = ("python3", "-m", "harness.shards")


class ShardError(InputError):
    """A shard that could not start, or a shard count that cannot be served."""

    def __init__(self, message: str) -> None:
        super().__init__(message, field=OPTION)


def check_count(count: int, endpoints: int) -> None:
    """0 (in-process) up to one shard per endpoint; anything else is ``ShardError``."""
    if count < 0:
        raise ShardError(f"{count} is negative; give 0 (in-process) or 1..{endpoints}")
    if count > endpoints:
        raise ShardError(
            f"{count} shards for {endpoints} endpoints: at most one shard per endpoint"
        )


def check_network(bind: str, via: Sequence[str], admin_token: str | None) -> None:
    """``--bind`` an IP address (a non-loopback one only with an admin token the user
    gave: truth and faults would be open) and each ``--shard-via`` a command; else
    ``InputError`` naming the option."""
    try:
        ipaddress.ip_address(bind)
    except ValueError:
        raise InputError(
            f"{bind!r} is not an IP address of this machine (127.0.0.1, 0.0.0.0, ...)",
            field=BIND_OPTION,
        ) from None
    if bind != HOST and not admin_token:
        raise InputError(
            f"{bind} opens the estate's ground truth and faults to the network: "
            "give --admin-token too",
            field=BIND_OPTION,
        )
    for command in via:
        try:
            words = shlex.split(command)
        except ValueError as exc:
            raise InputError(f"{command!r}: {exc}", field=VIA_OPTION) from None
        if not words:
            raise InputError(
                "is empty; give a command prefix such as 'ssh b.example'", field=VIA_OPTION
            )


def shard_command(index: int, via: Sequence[str] = ()) -> list[str]:
    """The argv that starts shard ``index``: here, or after its ``--shard-via`` prefix."""
    if not via:
        return list(SHARD_COMMAND)
    return [*shlex.split(via[index % len(via)]), *REMOTE_COMMAND]


def assign(ids: Sequence[str], count: int) -> dict[str, int]:
    """Endpoint id -> shard index, round-robin over the estate's delivery order."""
    return {mid: i % count for i, mid in enumerate(ids)}


def digest(ids: Sequence[str]) -> str:
    """A short fingerprint of a slice, so the parent knows each shard built the same estate."""
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16]


def merge_truth(parts: Sequence[Sequence[Record]], order: Sequence[str] = ()) -> list[Record]:
    """The shards' records as one log ordered by t. Ties: the endpoint's place in
    ``order`` (the estate's delivery order, so the inventory reads as an in-process
    estate's), then the shard, then the order the shard recorded them (each shard's own
    log is in arrival order, not t order)."""
    rank = {mid: i for i, mid in enumerate(order)}
    last = len(rank)
    keyed = [
        (r.t, rank.get(r.endpoint, last), s, i, r)
        for s, part in enumerate(parts)
        for i, r in enumerate(part)
    ]
    keyed.sort(key=lambda k: k[:4])
    return [k[4] for k in keyed]


def rate_faults(world: World, now: float | None = None) -> list[tuple[float, float | None, Fault]]:
    """The scenario's faults switched at run time (outages are in the profiles already);
    with ``now`` (scenario seconds) only those whose window is not over by then."""
    from simulators.served import OUTAGE_FAULTS, Fault

    return [
        (f.start, f.end, Fault(f.kind, f.region, f.channel, tuple(f.endpoints), f.rate, f.mode))
        for f in world.scenario.faults
        if f.kind not in OUTAGE_FAULTS and (now is None or f.end is None or f.end > now)
    ]


@dataclass
class ShardDirectory(EndpointDirectory):
    """The orchestrator's directory when the estate is sharded: each endpoint's own shard."""

    shard_url: dict[str, str] = field(default_factory=dict)  # endpoint id -> shard base URL
    erp_url: str = ""
    marketplace_url: str = ""

    def delivery_url(self, endpoint: str) -> str:
        return f"{self.shard_url.get(endpoint, self.base_url)}/endpoints/{endpoint}/deliveries"

    def poll_url(self, promo: str) -> str:
        return f"{self.marketplace_url or self.base_url}/marketplace/offers/{promo}"

    def validate_url(self) -> str:
        return f"{self.erp_url or self.base_url}/erp/validate"


@dataclass
class Shard:
    index: int
    proc: subprocess.Popen[bytes]
    url: str = ""
    endpoints: tuple[str, ...] = ()


@dataclass
class ShardSet:
    """N running shard processes and which endpoint each serves."""

    shards: list[Shard]
    order: list[str]  # every delivery endpoint, in the estate's order
    owner: dict[str, int]  # endpoint id -> shard index
    channel_of: dict[str, str]  # endpoint id -> channel (central channels' redirects)
    epoch: float = 0.0
    speed: float = 1.0

    def urls(self) -> list[str]:
        """Each shard's base URL, by shard index."""
        return [s.url for s in self.shards]

    def url_of(self, endpoint: str) -> str:
        return self.shards[self.owner[endpoint]].url

    def endpoint_urls(self) -> dict[str, str]:
        """Endpoint id -> its shard's base URL (the load's shoppers read this map)."""
        return {mid: self.shards[s].url for mid, s in self.owner.items()}

    def directory(self, base_url: str, polled: frozenset[str]) -> ShardDirectory:
        central = {ch: mid for mid, ch in self.channel_of.items() if ch != "pos"}
        return ShardDirectory(
            base_url,
            polled,
            shard_url=self.endpoint_urls(),
            erp_url=self.url_of(central["erp"]) if "erp" in central else "",
            marketplace_url=self.url_of(central["marketplace"]) if "marketplace" in central else "",
        )

    def describe(self) -> list[dict[str, Any]]:
        return [
            {"index": s.index, "url": s.url, "pid": s.proc.pid, "endpoints": list(s.endpoints)}
            for s in self.shards
        ]

    @classmethod
    def start(
        cls,
        world: World,
        count: int,
        *,
        speed: float,
        epoch: float | None = None,
        callback_url: str | None = None,
        callback_key: Mapping[str, str] | None = None,
        admin_token: str | None = None,
        play_faults: bool = False,
        timeout: float = START_TIMEOUT_S,
        via: Sequence[str] = (),
        bind: str = HOST,
    ) -> ShardSet:
        """Start ``count`` shards of ``world``'s estate (``launch``) and give them the
        scenario clock (``go``: ``epoch`` is the wall time of t=0, default now)."""
        made = cls.launch(
            world,
            count,
            callback_url=callback_url,
            callback_key=callback_key,
            admin_token=admin_token,
            play_faults=play_faults,
            timeout=timeout,
            via=via,
            bind=bind,
        )
        try:
            made.go(time.time() if epoch is None else epoch, speed)
        except BaseException:
            made.stop()
            raise
        return made

    @classmethod
    def launch(
        cls,
        world: World,
        count: int,
        *,
        callback_url: str | None = None,
        callback_key: Mapping[str, str] | None = None,
        admin_token: str | None = None,
        play_faults: bool = False,
        timeout: float = START_TIMEOUT_S,
        via: Sequence[str] = (),
        bind: str = HOST,
    ) -> ShardSet:
        """Start the shard processes (shard i through ``via[i % len(via)]`` when given,
        listening on ``bind``); returns once each listens (their clocks wait for ``go``,
        so the seconds they take to start cost no scenario time)."""
        order = [m.id for m in world.delivery_models]
        check_count(count, len(order))
        owner = assign(order, count)
        spec = {
            "scenario": world.scenario.model_dump(mode="json", by_alias=True),
            "seed": world.seed,
            "count": count,
            "callback_url": callback_url,
            "callback_key": dict(callback_key or {}),
            "admin_token": admin_token,
            "play_faults": play_faults,
            "host": bind,
        }
        shards = [
            Shard(
                i,
                subprocess.Popen(
                    shard_command(i, via),
                    cwd=ROOT,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    # Its own session: a Ctrl-C reaches the parent, which stops the shards.
                    start_new_session=True,
                ),
            )
            for i in range(count)
        ]
        channel_of = {m.id: m.channel for m in world.delivery_models}
        made = cls(shards, order, owner, channel_of)
        try:
            lost: ShardError | None = None
            for shard in shards:
                try:
                    _send(shard, {**spec, "index": shard.index})
                except ShardError as exc:
                    # It died before reading its spec: what it printed, or its exit code,
                    # says why better than the broken pipe (read with the others' answers).
                    lost = lost or exc
            answers = _read_lines([s.proc for s in shards], timeout)
            for shard, answer in zip(shards, answers, strict=True):
                mine = [mid for mid in order if owner[mid] == shard.index]
                _accept(shard, answer, count, mine, timeout)
            if lost is not None:
                raise lost
        except BaseException:
            made.stop()
            raise
        return made

    def go(self, epoch: float, speed: float) -> None:
        """Every shard's scenario clock: t=0 at wall time ``epoch``, ``speed`` times real time."""
        self.epoch, self.speed = epoch, speed
        for shard in self.shards:
            _send(shard, {"epoch": epoch, "speed": speed})

    def stop(self, timeout: float = 15.0) -> None:
        """Close each shard's stdin (it shuts down cleanly), then wait; kill a laggard."""
        for shard in self.shards:
            if shard.proc.stdin is not None and not shard.proc.stdin.closed:
                with contextlib.suppress(OSError):  # a shard already gone
                    shard.proc.stdin.close()
        deadline = time.monotonic() + timeout
        for shard in self.shards:
            try:
                shard.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                shard.proc.kill()
                shard.proc.wait(5)
            if shard.proc.stdout is not None:
                shard.proc.stdout.close()


def _send(shard: Shard, message: dict[str, Any]) -> None:
    assert shard.proc.stdin is not None
    try:
        shard.proc.stdin.write(json.dumps(message).encode() + b"\n")
        shard.proc.stdin.flush()
    except OSError as exc:  # it died: its exit code says more than the broken pipe
        code = shard.proc.poll()
        raise ShardError(f"estate shard {shard.index + 1} is gone (exit {code}): {exc}") from None


def _read_lines(procs: list[subprocess.Popen[bytes]], timeout: float) -> list[bytes | None]:
    """One stdout line from each process, read in threads (None: none within ``timeout``)."""
    lines: list[bytes | None] = [None] * len(procs)

    def read(i: int) -> None:
        assert procs[i].stdout is not None
        lines[i] = procs[i].stdout.readline()

    threads = [threading.Thread(target=read, args=(i,), daemon=True) for i in range(len(procs))]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return lines


def _accept(
    shard: Shard, answer: bytes | None, count: int, mine: list[str], timeout: float
) -> None:
    name = f"estate shard {shard.index + 1} of {count}"
    if answer is None:
        raise ShardError(f"{name} did not start within {timeout:g} s")
    if not answer:
        code = shard.proc.wait(5)
        raise ShardError(f"{name} exited with code {code} before it served")
    try:
        ready = json.loads(answer)
    except ValueError:
        raise ShardError(f"{name} answered {answer[:80]!r}, not its address") from None
    if "error" in ready:
        raise ShardError(f"{name} failed to start: {ready['error']}")
    if ready.get("digest") != digest(mine):
        raise ShardError(f"{name} built another estate than this process (not deterministic?)")
    shard.url, shard.endpoints = str(ready["url"]), tuple(mine)


# --- the shard process ---------------------------------------------------------------------


def _quiet_stdout() -> None:
    """Point fd 1 at /dev/null once the ready line is out: the parent reads no more of the
    pipe, so a stray print would fill it (64 KiB) and stall the shard's event loop."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)


def main() -> int:
    """``python -m harness.shards``: one shard, its spec on the first stdin line."""
    try:
        spec = json.loads(sys.stdin.buffer.readline() or b"null")
        if not isinstance(spec, dict):
            raise ValueError("no shard spec on stdin")
        return run(_serve(spec))  # uvloop, as the live runs (harness/runtime/live.py)
    except Exception as exc:  # one line for the parent, never a traceback
        text = " ".join(f"{type(exc).__name__}: {exc}".split())
        sys.stdout.write(json.dumps({"error": text}) + "\n")
        sys.stdout.flush()
        return 2


async def _serve(spec: dict[str, Any]) -> int:
    from harness.runtime.world import build_world
    from harness.scenario import Scenario
    from simulators.apps import create_sim_app, run_sim_server
    from simulators.served import EstateSlice

    scenario: Scenario = Scenario.model_validate(spec["scenario"])
    world = build_world(scenario, spec["seed"])
    order = [m.id for m in world.delivery_models]
    owner = assign(order, int(spec["count"]))
    mine = [mid for mid in order if owner[mid] == spec["index"]]
    app = create_sim_app(
        EstateSlice(world, frozenset(mine)),
        callback_url=spec.get("callback_url"),
        callback_key=spec.get("callback_key") or "",
        t0=time.monotonic(),  # pinned; clock set from the shared epoch and speed at "go"
        admin_token=spec.get("admin_token"),
        component=f"estate-shard-{spec['index']}",  # its loop lag, as the reports name it
    )
    server = await run_sim_server(app, int(spec.get("port", 0)), str(spec.get("host", HOST)))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    lines: asyncio.Queue[bytes] = asyncio.Queue()
    buffer = bytearray()

    def readable() -> None:
        chunk = os.read(0, 65536)
        if not chunk:  # the parent closed our stdin, or died
            loop.remove_reader(0)
            stop.set()
            return
        buffer.extend(chunk)
        while b"\n" in buffer:
            line, _, rest = bytes(buffer).partition(b"\n")
            buffer[:] = rest
            lines.put_nowait(line)

    loop.add_reader(0, readable)
    sys.stdout.write(json.dumps({"url": server.url, "digest": digest(mine)}) + "\n")
    sys.stdout.flush()
    _quiet_stdout()
    go = asyncio.ensure_future(lines.get())
    await asyncio.wait([go, asyncio.ensure_future(stop.wait())], return_when="FIRST_COMPLETED")
    if go.done():
        clock = json.loads(go.result())
        state = app.state.sim
        if float(clock["speed"]) <= 0:
            raise ValueError("speed must be > 0")
        state.clock.speed = float(clock["speed"])
        state.clock.t0 = time.monotonic() - (time.time() - float(clock["epoch"]))
        if spec.get("play_faults"):
            # As an unsharded stack plays them (open-ended ones end with the scenario), but
            # not the faults that hit no endpoint of this shard (FaultSwitch.switch would
            # refuse them and end the player).
            from harness.stack import live_faults

            served = state.world
            schedule = [
                s for s in live_faults(world, state.clock.now()) if served.fault_targets(s[2])
            ]
            if schedule:
                state.spawn(app.state.faults.play(schedule))
        await stop.wait()
    else:
        go.cancel()
    await server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
