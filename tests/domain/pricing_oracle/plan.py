"""The application plan (rules 2-3): classes in order, class exclusivity, the runs."""

from __future__ import annotations

from operator import attrgetter
from typing import TYPE_CHECKING, Any

from tests.domain.pricing_oracle.amounts import _State
from tests.domain.pricing_oracle.common import _NO_KEY, _ZERO
from tests.domain.pricing_oracle.steps import _apply_all

if TYPE_CHECKING:
    from tests.domain.pricing_oracle.compiled import _Promo
    from tests.domain.pricing_oracle.context import _Ctx

_order_key = attrgetter("order")
_reverse_key = attrgetter("reverse_order")


class _ClassPlan:
    """One class's applicable promotions, sorted, split by stacking (rule 3)."""

    __slots__ = ("exclusive", "members", "stack_key", "stackable")

    def __init__(self, members: list[_Promo]) -> None:
        self.members = members
        self.exclusive = [cp for cp in members if cp.stacking == "exclusive_class"]
        self.stackable = [cp for cp in members if cp.stacking != "exclusive_class"]
        # A stacked set ranks by its lowest member in ties.
        self.stack_key = min((cp.key for cp in self.stackable), default=_NO_KEY)


class _Plan:
    """How to run a set of applicable promotions: the classes in order, and aside the
    exclusive_global ones, each to be priced alone."""

    __slots__ = ("classes", "exclusive_global")

    def __init__(self, applicable: list[_Promo], reverse: bool) -> None:
        ordered = sorted(applicable, key=_reverse_key if reverse else _order_key)
        groups: tuple[list[_Promo], ...] = ([], [], [])
        self.exclusive_global: list[_Promo] = []
        for cp in ordered:
            if cp.stacking == "exclusive_global":
                self.exclusive_global.append(cp)
            else:
                groups[cp.cls].append(cp)
        self.classes = [_ClassPlan(group) for group in groups if group]


def _run_class(plan: _ClassPlan, st: _State, ctx: _Ctx) -> _State:
    if not plan.exclusive:
        _apply_all(plan.members, st, ctx)
        return st
    candidates: list[tuple[list[_Promo], tuple[Any, ...]]] = [(plan.stackable, plan.stack_key)]
    candidates.extend(([cp], cp.key) for cp in plan.exclusive)
    best = st
    best_rank: tuple[Any, ...] = ()
    start = len(st.log)
    for members, key in candidates:
        trial = st.copy()
        _apply_all(members, trial, ctx)
        gain = sum([d for _, _, d in trial.log[start:]], _ZERO)
        rank = (-gain, key)
        if not best_rank or rank < best_rank:
            best, best_rank = trial, rank
    return best


def _run(classes: list[_ClassPlan], ctx: _Ctx) -> _State:
    """Apply the classes' promotions in order, each class from the state the last left."""
    st = _State(ctx.list_amounts[:], ctx.ship, [], [], [])
    for plan in classes:
        st = _run_class(plan, st, ctx)
    return st
