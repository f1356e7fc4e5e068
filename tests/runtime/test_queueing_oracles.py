"""The SimPy serving path against queueing theory: Erlang C (M/M/c) and Pollaczek–Khinchine
(M/D/1). The endpoint model, its capacity Resource and ``serve_request`` are the runtime's
own serving code: the path every attempt takes when it has to queue."""

from __future__ import annotations

import math
import random

import pytest
import simpy

from harness.runtime.sim import serve_request
from simulators.endpoint import EndpointModel, Request
from simulators.profiles import Latency, Profile


def erlang_c_response(lam: float, mu: float, c: int) -> float:
    """Mean time in system of an M/M/c queue (Erlang C)."""
    a = lam / mu
    rho = a / c
    assert rho < 1
    top = a**c / math.factorial(c) / (1 - rho)
    p_wait = top / (sum(a**k / math.factorial(k) for k in range(c)) + top)
    return p_wait / (c * mu - lam) + 1 / mu


def md1_response(lam: float, d: float) -> float:
    """Mean time in system of an M/D/1 queue (Pollaczek–Khinchine)."""
    rho = lam * d
    assert rho < 1
    return d + rho * d / (2 * (1 - rho))


def simulate_mean_response(latency: Latency, capacity: int, lam: float, n: int, seed: int) -> float:
    env = simpy.Environment()
    model = EndpointModel("E1", "pos", Profile("oracle", latency=latency, capacity=capacity))
    slots = simpy.Resource(env, capacity=capacity)
    service_rng = random.Random(f"{seed}:service")
    arrivals = random.Random(f"{seed}:arrivals")
    times: list[float] = []

    def one(i: int):  # type: ignore[no-untyped-def]
        start = env.now
        req = Request(f"d{i}", f"k{i}", "revoke", "P", 1)

        def done(plan, changes):  # type: ignore[no-untyped-def]
            times.append(env.now - start)

        yield from serve_request(env, model, slots, req, service_rng, 0.0, None, done)

    def source():  # type: ignore[no-untyped-def]
        for i in range(n):
            yield env.timeout(arrivals.expovariate(lam))
            env.process(one(i))

    env.process(source())
    env.run()
    warm = n // 20  # drop the empty-system start
    kept = times[warm:]
    return sum(kept) / len(kept)


@pytest.mark.parametrize(("c", "lam", "mean_service"), [(1, 0.7, 1.0), (3, 2.4, 1.0)])
def test_mmc_matches_erlang_c(c: int, lam: float, mean_service: float) -> None:
    expected = erlang_c_response(lam, 1 / mean_service, c)
    got = simulate_mean_response(Latency.exponential(mean_service), c, lam, 200_000, seed=1)
    assert got == pytest.approx(expected, rel=0.03)


def test_md1_matches_pollaczek_khinchine() -> None:
    expected = md1_response(0.75, 1.0)
    got = simulate_mean_response(Latency.fixed(1.0), 1, 0.75, 200_000, seed=2)
    assert got == pytest.approx(expected, rel=0.03)


def test_oracles_themselves() -> None:
    # M/M/1 reduces to 1/(mu - lambda); M/D/1 at rho=0.5 gives D * 1.5.
    assert erlang_c_response(0.5, 1.0, 1) == pytest.approx(2.0)
    assert md1_response(0.5, 1.0) == pytest.approx(1.5)
