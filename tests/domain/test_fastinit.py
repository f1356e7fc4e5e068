"""``fast_init`` keeps every promise of a frozen dataclass while building it faster."""

from __future__ import annotations

import copy
import pickle
from dataclasses import FrozenInstanceError, InitVar, dataclass, field, fields, replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.domain.fastinit import TWIN_FIELDS, fast_init
from harness.orchestrator.commands import SendDelivery, StartTimer, WriteRecord
from harness.orchestrator.events import Ack, DeliveryResult
from simulators.endpoint import Request


@dataclass(frozen=True, slots=True)
class Plain:
    a: str
    b: int = 2
    c: tuple = ()


@fast_init
@dataclass(frozen=True, slots=True)
class Fast:
    a: str
    b: int = 2
    c: tuple = ()


@given(st.text(), st.integers(), st.tuples(st.integers()))
def test_same_values_positional_and_keyword(a: str, b: int, c: tuple) -> None:
    for args, kwargs in (((a, b, c), {}), ((a,), {"c": c, "b": b}), ((), {"a": a})):
        fast, plain = Fast(*args, **kwargs), Plain(*args, **kwargs)
        assert (fast.a, fast.b, fast.c) == (plain.a, plain.b, plain.c)
        assert repr(fast).removeprefix("Fast") == repr(plain).removeprefix("Plain")


def test_still_frozen_comparable_hashable_and_picklable() -> None:
    x = Fast("x", 3)
    with pytest.raises(FrozenInstanceError):
        x.a = "y"  # type: ignore[misc]
    assert x == Fast("x", 3) and x != Fast("x", 4)
    assert hash(x) == hash(Fast("x", 3))
    assert replace(x, b=5) == Fast("x", 5)
    assert pickle.loads(pickle.dumps(x)) == x
    assert copy.deepcopy(x) == x


def test_inherited_fields_are_set_too() -> None:
    @fast_init
    @dataclass(frozen=True, slots=True)
    class Child(Plain):
        d: str = "d"

    child = Child("a", 1, (2,), "e")
    assert (child.a, child.b, child.c, child.d) == ("a", 1, (2,), "e")
    assert Child("a") == Child("a", 2, (), "d")


def test_bad_calls_fail_like_the_generated_init() -> None:
    with pytest.raises(TypeError):
        Fast()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Fast("a", 1, (), 4)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Fast("a", d=1)  # type: ignore[call-arg]


def test_refuses_what_it_cannot_keep_the_meaning_of() -> None:
    @dataclass(slots=True)
    class Mutable:
        a: int

    @dataclass(frozen=True, slots=True)
    class Factory:
        a: list = field(default_factory=list)

    @dataclass(frozen=True, slots=True)
    class Checked:
        a: int

        def __post_init__(self) -> None:
            pass

    @dataclass(frozen=True, slots=True, init=False)
    class OwnInit:
        a: int

        def __init__(self, a: int) -> None:
            object.__setattr__(self, "a", 2 * a)

    @dataclass(frozen=True, slots=True)
    class InitOnly:
        a: int
        scale: InitVar[int] = 1

    for cls in (Mutable, Factory, Checked, OwnInit, InitOnly):
        with pytest.raises(TypeError):
            fast_init(cls)
    assert OwnInit(3).a == 6  # left as it was


@pytest.mark.parametrize(
    "cls", [SendDelivery, StartTimer, WriteRecord, DeliveryResult, Ack, Request]
)
def test_hot_path_types_use_it_and_stay_frozen(cls: type) -> None:
    assert cls.__init__.__qualname__ == f"{cls.__qualname__}.__init__"
    assert cls.__init__.__module__ == cls.__module__
    names = cls.__init__.__code__.co_names
    # Five fields or more: built in the class's twin; fewer: through the slot setters.
    assert ("_set_class" in names) == (len(fields(cls)) >= TWIN_FIELDS)
    assert all(f"_set_{f.name}" in names for f in fields(cls))
    assert cls.__dataclass_params__.frozen  # type: ignore[attr-defined]


@fast_init
@dataclass(frozen=True, slots=True)
class Wide:
    a: str
    b: int
    c: tuple = ()
    d: float = 0.5
    e: object = None


@given(st.text(), st.integers(), st.tuples(st.integers()), st.floats(allow_nan=False))
def test_a_twin_built_instance_is_its_class_and_keeps_every_promise(
    a: str, b: int, c: tuple, d: float
) -> None:
    x = Wide(a, b, c, e=d)
    assert type(x) is Wide and isinstance(x, Wide)
    assert (x.a, x.b, x.c, x.d, x.e) == (a, b, c, 0.5, d)
    assert x == Wide(a, b, c, 0.5, d) and hash(x) == hash(Wide(a, b, c, 0.5, d))
    with pytest.raises(FrozenInstanceError):
        x.a = "y"  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(x)) == x and replace(x, b=b + 1).b == b + 1


def test_a_subclass_of_a_twin_built_class_stays_itself() -> None:
    @dataclass(frozen=True, slots=True)
    class Wider(Wide):
        f: int = 6

    x = Wider("a", 1, (), 2.0, None, 7)
    assert type(x) is Wider and (x.a, x.d, x.f) == ("a", 2.0, 7)
    y = Wide.__new__(Wider)
    Wide.__init__(y, "z", 2)  # the inherited fast __init__, on a subclass's instance
    assert type(y) is Wider and (y.a, y.b, y.e) == ("z", 2, None)
    with pytest.raises(FrozenInstanceError):
        y.a = "w"  # type: ignore[misc]
