"""Helpers for the certification kit's tests: example adapters served on 127.0.0.1
(in a thread of this process, or as real processes)."""

from __future__ import annotations

import contextlib
import importlib.util
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import ModuleType

import httpx
import uvicorn

ADAPTERS = Path(__file__).resolve().parents[2] / "examples" / "adapters"
TOKEN = "test-token"
ROOT = Path(__file__).resolve().parents[2]


def load_adapter(name: str) -> ModuleType:
    """Import ``examples/adapters/<name>.py`` by path (the folder is not a package)."""
    if str(ADAPTERS) not in sys.path:
        sys.path.insert(0, str(ADAPTERS))
    spec = importlib.util.spec_from_file_location(f"adapter_{name}", ADAPTERS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # a thread cannot install them
        pass


def serve_in_thread(app: object) -> tuple[str, Callable[[], None]]:
    """Serve ``app`` on a free 127.0.0.1 port in a thread: (base URL, stop)."""
    # IPPROTO_TCP spelled out so asyncio sets TCP_NODELAY (else ~40 ms per request).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = _Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("adapter did not start")
        time.sleep(0.01)

    def stop() -> None:
        server.should_exit = True
        thread.join(10)
        sock.close()

    return f"http://127.0.0.1:{port}", stop


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def start_adapter_processes(names: Sequence[str], token: str) -> Iterator[dict[str, str]]:
    """Run ``python examples/adapters/<name>.py --port P --token T`` for each name; yield
    name -> base URL once every one answers GET /health; terminate them afterwards."""
    procs: dict[str, tuple[subprocess.Popen[bytes], str]] = {}
    try:
        for name in names:
            port = _free_port()
            cmd = [
                sys.executable,
                str(ADAPTERS / f"{name}.py"),
                "--port",
                str(port),
                "--token",
                token,
            ]
            proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL)
            procs[name] = (proc, f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 30
        for name, (proc, url) in procs.items():
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"adapter {name} exited with {proc.returncode}")
                try:
                    httpx.get(f"{url}/health", headers={"Authorization": f"Bearer {token}"})
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"adapter {name} did not start") from None
                    time.sleep(0.1)
        yield {name: url for name, (_, url) in procs.items()}
    finally:
        for proc, _ in procs.values():
            proc.terminate()
        for proc, _ in procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
