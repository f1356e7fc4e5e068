"""Driver files: every mistake is exit 2 naming file, line and field, before anything runs;
a system under test that is down ends the run with one line within its timeout."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_driver import Outcome, run_cli

from harness.inputs import InputError
from harness.sut.yaml_driver import load_yaml_driver

ROOT = Path(__file__).parents[2]
OUTAGE = Path(__file__).with_name("outage.yaml")

GOOD = """\
name: tiny-system
base_url: http://127.0.0.1:{port}
health: /healthz
timeout: 2
actions:
  create: {{url: /promotions, body: "{{{{promotion}}}}"}}
  submit: skip
  validate: skip
  approve: skip
  publish: {{url: "/promotions/{{promo}}/publish", headers: {{X-Key: "${{SUT_TEST_KEY}}"}}}}
  rollback: {{url: "/promotions/{{promo}}/rollback", body: {{deadline: "{{{{deadline}}}}"}}}}
"""


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "driver.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _line(path: Path, needle: str) -> int:
    return next(
        i for i, line in enumerate(path.read_text().splitlines(), start=1) if needle in line
    )


def test_a_good_driver_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUT_TEST_KEY", "s3cret")
    driver = load_yaml_driver(_write(tmp_path, GOOD.format(port=9)))
    assert driver.name == "tiny-system" and driver.supports("approve")
    assert not driver.supports("pause")
    assert driver.spec.actions["publish"].headers == {"X-Key": "s3cret"}  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("change", "needle", "field", "says"),
    [
        (
            ("  approve: skip", "  aprove: skip"),
            "aprove",
            "actions.aprove",
            "unknown action 'aprove'",
        ),
        (
            ('/promotions/{promo}/publish"', '/promotions/{promotion_id}/publish"'),
            "promotion_id",
            "actions.publish.url",
            "unknown placeholder {promotion_id}",
        ),
        (
            ('"{{deadline}}"', '"{{deadlin}}"'),
            "deadlin",
            "actions.rollback.body.deadline",
            "unknown value {{deadlin}}",
        ),
        (("timeout: 2", "timeout: -1"), "timeout", "timeout", "greater than 0"),
    ],
)
def test_driver_mistakes_name_file_line_and_field(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    change: tuple[str, str],
    needle: str,
    field: str,
    says: str,
) -> None:
    monkeypatch.setenv("SUT_TEST_KEY", "s3cret")
    text = GOOD.format(port=9)
    assert change[0] in text
    path = _write(tmp_path, text.replace(*change))
    with pytest.raises(InputError) as caught:
        load_yaml_driver(path)
    err = caught.value
    assert (err.path, err.field) == (str(path), field)
    assert err.line == _line(path, needle)
    assert says in err.reason


def test_a_missing_secret_names_its_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SUT_TEST_KEY", raising=False)
    path = _write(tmp_path, GOOD.format(port=9))
    with pytest.raises(InputError) as caught:
        load_yaml_driver(path)
    err = caught.value
    assert err.field == "actions.publish.headers.X-Key"
    assert err.line == _line(path, "SUT_TEST_KEY")
    assert "SUT_TEST_KEY is not set" in err.reason
    assert "s3cret" not in str(err)


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Outcome]:
    """``promoharness ARGS`` through ``harness.cli.main`` in this process (its exit code and
    stderr, tests/cli_driver.py), with the driver's secret set: every refusal here comes
    before anything a fresh interpreter would add but its ~3 s of imports."""
    monkeypatch.setenv("SUT_TEST_KEY", "k")
    return run_cli


def test_the_cli_exits_2_on_a_bad_driver(tmp_path: Path, cli: Callable[..., Outcome]) -> None:
    path = _write(tmp_path, GOOD.format(port=9).replace("  approve: skip", "  aprove: skip"))
    done = cli("live", str(OUTAGE), "--sut", str(path), "--out", str(tmp_path / "out"))
    assert done.code == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert f"{path}:{_line(path, 'aprove')}: actions.aprove: unknown action" in done.stderr


def test_a_timeline_action_the_driver_lacks_is_exit_2(
    tmp_path: Path, cli: Callable[..., Outcome]
) -> None:
    path = _write(tmp_path, GOOD.format(port=9).replace("  approve: skip\n", ""))
    done = cli("live", str(OUTAGE), "--sut", str(path), "--out", str(tmp_path / "out"))
    assert done.code == 2 and "Traceback" not in done.stderr
    assert "approve" in done.stderr and "skip" in done.stderr


def test_a_system_that_is_down_is_exit_2_within_its_timeout(
    tmp_path: Path, cli: Callable[..., Outcome]
) -> None:
    port = _closed_port()
    path = _write(tmp_path, GOOD.format(port=port))
    began = time.monotonic()
    done = cli(
        "live",
        str(OUTAGE),
        "--sut",
        str(path),
        "--out",
        str(tmp_path / "out"),
        "--estate-port",
        str(_closed_port()),
    )
    took = time.monotonic() - began
    assert done.code == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert f"system under test unreachable at http://127.0.0.1:{port}/healthz" in done.stderr
    # The driver's timeout is 2 s; a hang would be the whole scenario, 260 s at 1x.
    assert took < 60
