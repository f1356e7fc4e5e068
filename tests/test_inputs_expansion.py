"""YAML alias expansion is refused from the node graph, before any value is built."""

from __future__ import annotations

import pytest

from harness.inputs import MAX_VALUES, InputError, parse_text


def laughs(levels: int, width: int = 9) -> str:
    rows = [f"a: &a [{', '.join(['lol'] * width)}]"]
    for level in range(1, levels):
        prev, cur = chr(ord("a") + level - 1), chr(ord("a") + level)
        rows.append(f"{cur}: &{cur} [{', '.join([f'*{prev}'] * width)}]")
    return "\n".join(rows) + "\n"


def test_the_error_names_the_first_alias_list_past_the_limit() -> None:
    # Values per level, the list itself included: a = 1 + 9 = 10, then 1 + 9 * previous:
    # b 91, c 820, d 7,381, e 66,430, f 597,871 > 500,000: line 6 is the culprit. Built
    # value by value, the count would instead cross the limit on a "lol" of line 1.
    assert MAX_VALUES == 500_000
    with pytest.raises(InputError) as caught:
        parse_text(laughs(levels=15), "laughs.yaml")
    assert caught.value.line == 6
    assert "MAX_VALUES" in caught.value.reason


def test_a_document_just_under_the_limit_is_built_whole() -> None:
    data, _ = parse_text(laughs(levels=5), "ok.yaml")  # e: 66,430 values, a to e ~74,700
    assert len(data["e"]) == 9 and data["e"][0][0][0][0] == ["lol"] * 9


@pytest.mark.parametrize(
    "text",
    ["name: x\nslos: &x [*x]\n", "name: x\nset: &m {a: [1, {b: *m}]}\n"],
    ids=["list", "mapping"],
)
def test_an_alias_inside_itself_is_refused_on_its_line(text: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_text(text, "self.yaml")
    assert caught.value.line == 2 and "contains it" in caught.value.reason
