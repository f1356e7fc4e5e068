"""``load --estate-shards N``: each shopper request goes to the shard serving its store or
channel (the ``shards`` map in ``locust-config.json``), and without the map to the one
estate, as before."""

from __future__ import annotations

import json
import random
from pathlib import Path

from harness.load.campaign import load_campaign, locust_config, resolve_scenario
from harness.runtime.world import build_world
from harness.shards import assign
from loadtests.common import load_config


def config_file(tmp_path: Path, shards: dict[str, str] | None) -> Path:
    campaign = load_campaign("ci-smoke")
    scenario = resolve_scenario(campaign, [])
    world = build_world(scenario, None)
    config = locust_config(
        campaign, scenario, world, api_url="http://api", sim_url="http://front", epoch=0.0
    )
    if shards is not None:
        ids = [m.id for m in world.delivery_models]
        config["shards"] = {mid: f"http://shard-{s}" for mid, s in assign(ids, 2).items()}
    path = tmp_path / "locust-config.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


def test_each_shopper_request_goes_to_its_endpoints_shard(tmp_path: Path) -> None:
    config = load_config(config_file(tmp_path, shards={}))
    rng = random.Random(7)
    seen = set()
    for _ in range(2000):
        url, endpoint = config.pick_endpoint(rng)
        shard = config.shards[endpoint.id]
        assert url.startswith(shard + "/"), (url, endpoint.id)
        assert endpoint.id in url or endpoint.channel != "pos"
        seen.add(shard)
    assert seen == {"http://shard-0", "http://shard-1"}  # the stores spread over both


def test_without_a_shard_map_the_paths_are_the_estates_own(tmp_path: Path) -> None:
    config = load_config(config_file(tmp_path, shards=None))
    rng = random.Random(7)
    assert all(config.pick_endpoint(rng)[0].startswith("/") for _ in range(200))
