"""The broker's names and lifecycle: stream and key names, starting a private
``redis-server`` on a free loopback port, and child processes that die with the front."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import redis

STREAM = "bf:changes"  # every change, published once
DEAD = "bf:dead"  # deliveries that exhausted their attempts or were refused for good
STATS = "bf:stats"  # counters per consumer (delivered, claimed, skipped, dead)
CHANNELS = ("erp", "pos", "ecommerce", "loyalty", "marketplace")


def group(channel: str) -> str:
    return f"ch:{channel}"


def done_key(event: str) -> str:
    """The processed-set of one event: the endpoints it has been delivered to (or
    dead-lettered at), so a redelivered event skips them."""
    return f"bf:done:{event}"


def view_key(promo: str) -> str:
    return f"bf:view:{promo}"


def acked_key(promo: str) -> str:
    """endpoint -> scenario time the apply was acknowledged (in the reply or by webhook)."""
    return f"bf:acked:{promo}"


def promo_key(promo: str) -> str:
    return f"bf:promo:{promo}"


class EstateClock:
    """The estate's scenario time (``GET /clock``), extrapolated between reads and read
    again every ``refresh`` wall seconds: the harness restarts scenario time once the
    system is up, so a reading from start-up would be wrong.

    A reading is placed at the middle of its round trip and kept while later ones agree
    with it, unless a later one had a shorter trip: on a busy machine a reply can wait
    a second before this process sees it, and stamping the reading at its arrival then
    put acknowledgements ``speed`` times that much too early (before the publish)."""

    def __init__(self, estate: str, refresh: float = 5.0) -> None:
        self.url = f"{estate}/clock"
        self.refresh = refresh
        self.read: tuple[float, float, float, float] | None = None  # (t, speed, mono, ±s)
        self.asked = float("-inf")  # monotonic time of the last answered read
        self.lock = asyncio.Lock()

    def learn(self, t: float, speed: float, sent: float, back: float) -> None:
        """Take a reading answered between monotonic ``sent`` and ``back``."""
        mid, half = (sent + back) / 2, (back - sent) / 2
        if self.read is not None:
            t0, speed0, mono0, half0 = self.read
            agrees = abs(t0 + (mid - mono0) * speed0 - t) <= (half0 + half) * speed + 1e-3
            if agrees and speed == speed0 and half0 <= half:
                return  # the kept reading is at least as precise
        self.read = (t, speed, mid, half)  # more precise, or the clock was restarted

    async def now(self, http: httpx.AsyncClient) -> float | None:
        """Scenario seconds now, or None if the estate never told. Callers that come
        while a read is under way wait for it (webhooks arrive together: each asking on
        its own, a busy estate left some unanswered, and those acks without a time)."""
        if time.monotonic() - self.asked > self.refresh:
            async with self.lock:
                if time.monotonic() - self.asked > self.refresh:  # not read meanwhile
                    await self._ask(http)
        if self.read is None:
            return None
        t, speed, then, _ = self.read
        return round(t + (time.monotonic() - then) * speed, 3)

    async def _ask(self, http: httpx.AsyncClient) -> None:
        sent = time.monotonic()
        try:
            # Generous: a slow answer only delays this acknowledgement's time.
            reply = (await http.get(self.url, timeout=30.0)).json()
            self.learn(float(reply["t"]), float(reply["speed"]), sent, time.monotonic())
            self.asked = sent
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            pass  # keep extrapolating the last reading; the next caller asks again


def die_with_parent() -> None:
    """preexec_fn: SIGTERM this child when the front dies, even by SIGKILL (Linux), so a
    killed front leaves no redis-server or consumer behind."""
    with contextlib.suppress(OSError):  # not Linux: the front's own exit path stops them
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_redis(log_dir: Path, patience: float = 20.0) -> tuple[subprocess.Popen[bytes], str]:
    """A throw-away redis-server on 127.0.0.1 (no persistence); returns (process, URL)."""
    port = free_port()
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    argv += ["--appendonly", "no", "--protected-mode", "yes", "--dir", str(log_dir)]
    with open(log_dir / "redis.log", "ab") as log:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url, socket_timeout=1.0)
    give_up = time.monotonic() + patience
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"redis-server exited with {proc.returncode} (see redis.log)")
        try:
            client.ping()
            client.close()
            return proc, url
        except redis.ConnectionError:
            if time.monotonic() > give_up:
                proc.kill()
                raise RuntimeError(f"redis-server did not answer on port {port}") from None
            time.sleep(0.05)


def stop(proc: subprocess.Popen[bytes], patience: float = 5.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=patience)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def create_groups(client: redis.Redis) -> None:
    """One consumer group per channel, each reading the stream from its start."""
    for channel in CHANNELS:
        try:
            client.xgroup_create(STREAM, group(channel), id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):  # already there: an existing broker
                raise
