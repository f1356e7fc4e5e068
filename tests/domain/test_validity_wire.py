"""Validity times on the wire: RFC 3339 in (Z or any offset), RFC 3339 out, no drift.

The model keeps wall-clock times read in ``validity.timezone``; the schema says
``date-time``. So an instant given with an offset must become a wall-clock time that,
read in the zone, is that same instant; and what the model writes as JSON (with the
zone's offset) must read back as the very same window.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from harness.domain.promotion import ValidityWindow

# DST both ways, half-hour and 45-minute offsets, a half-hour DST shift, plain UTC.
ZONES = [
    "Europe/Paris",
    "America/New_York",
    "Australia/Sydney",
    "Asia/Kathmandu",
    "Australia/Lord_Howe",
    "America/St_Johns",
    "UTC",
]
walls = st.datetimes(min_value=dt.datetime(1950, 1, 1), max_value=dt.datetime(2090, 1, 1))
offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: dt.timezone(dt.timedelta(minutes=m)))


def window(start: object, zone: str) -> ValidityWindow:
    return ValidityWindow.model_validate(
        {"start": start, "end": "2100-01-01T00:00:00", "timezone": zone}
    )


@settings(max_examples=300, deadline=None, derandomize=True)
@given(wall=walls, zone=st.sampled_from(ZONES))
def test_json_carries_an_offset_and_reads_back_unchanged(wall: dt.datetime, zone: str) -> None:
    w = window(wall.isoformat(), zone)
    text = w.model_dump(mode="json")["start"]
    written = dt.datetime.fromisoformat(text)
    assert written.tzinfo is not None, text  # RFC 3339: an offset, always
    assert written.replace(tzinfo=None) == wall  # the wall clock as it was given
    assert window(text, zone) == w
    assert ValidityWindow.model_validate_json(w.model_dump_json()) == w


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    wall=walls,
    offset=offsets,
    zone=st.sampled_from(ZONES),
    zulu=st.booleans(),
)
def test_an_instant_with_any_offset_becomes_that_instant_s_wall_clock_time(
    wall: dt.datetime, offset: dt.timezone, zone: str, zulu: bool
) -> None:
    instant = wall.replace(tzinfo=dt.UTC if zulu else offset)
    text = instant.isoformat()
    if zulu:
        text = text.replace("+00:00", "Z")
    got = window(text, zone).start
    assert got.tzinfo is None
    # Read in the zone (either side of a fold), the wall clock is the instant given.
    tz = ZoneInfo(zone)
    # (Timestamps, not ==: PEP 495 makes inter-zone == False for times in a fold or gap.)
    seconds = instant.timestamp()
    assert any(got.replace(tzinfo=tz, fold=f).timestamp() == seconds for f in (0, 1)), text
