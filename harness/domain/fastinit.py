"""``fast_init``: a cheaper constructor for frozen, slotted dataclasses on hot paths.

A frozen dataclass's generated ``__init__`` stores each field through
``object.__setattr__`` — about twice what storing through the slot's own descriptor
costs. The commands and events a delivery makes (``SendDelivery``, ``DeliveryResult``,
``Request``, ...) are built tens of thousands of times a second in a virtual-time run, so
this decorator swaps in an ``__init__`` with the same signature (names, order, defaults)
that stores through the slot descriptors. Everything else stays the dataclass's own:
assignment after construction still raises ``FrozenInstanceError``, equality, hashing,
``repr``, ``replace`` and pickling are unchanged.

Cheaper still, for a class of ``TWIN_FIELDS`` fields or more, all its own slots (its
base is ``object``): for the length of ``__init__`` the instance wears the class's
*twin* — a plain class with the very same ``__slots__``, so the same memory layout, and
no frozen ``__setattr__`` — and is given its own class back before ``__init__`` returns.
Each field is then a plain slot store instead of a call of the slot's setter: a
``DeliveryResult`` or ``SendDelivery`` (ten fields) costs 5.3k machine instructions
instead of 8.6k (callgrind), and a simulated delivery builds one of each (``promoharness
bench sim``). Nothing can fail between the two swaps (a slot store allocates nothing),
and a subclass's instance, whose layout the twin need not share, is built through the
descriptors.
"""

from __future__ import annotations

import inspect
from dataclasses import MISSING, fields, is_dataclass
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["fast_init"]


def fast_init(cls: type[T]) -> type[T]:
    """Give the frozen, slotted dataclass ``cls`` a descriptor-based ``__init__``."""
    params = getattr(cls, "__dataclass_params__", None)
    if not is_dataclass(cls) or params is None or not params.frozen:
        raise TypeError(f"{cls.__name__}: fast_init is for frozen dataclasses")
    if "__slots__" not in cls.__dict__ or hasattr(cls, "__post_init__") or not params.init:
        raise TypeError(
            f"{cls.__name__}: fast_init needs slots=True, the generated __init__ and no "
            "__post_init__"
        )
    namespace: dict[str, Any] = {}
    signature, body = [], []
    for f in fields(cls):
        if not f.init or f.kw_only or f.default_factory is not MISSING:
            raise TypeError(f"{cls.__name__}.{f.name}: fast_init takes plain fields only")
        # The slot's member descriptor, wherever in the hierarchy the field was declared.
        slot = next(k.__dict__[f.name] for k in cls.__mro__ if f.name in k.__dict__)
        namespace[f"_set_{f.name}"] = slot.__set__
        if f.default is MISSING:
            signature.append(f.name)
        else:
            namespace[f"_default_{f.name}"] = f.default
            signature.append(f"{f.name}=_default_{f.name}")
        body.append(f"_set_{f.name}(self, {f.name})")
    # Init-only pseudo-fields (InitVar) are parameters of the generated __init__ that
    # ``fields`` does not list: refuse rather than drop them.
    expected = [name for name in inspect.signature(cls.__init__).parameters][1:]
    if expected != [f.name for f in fields(cls)]:
        raise TypeError(f"{cls.__name__}: fast_init takes no init-only (InitVar) fields")
    head = f"def __init__(self, {', '.join(signature)}):\n"
    # Two swaps cost what about four setter calls do: worth it from five fields.
    twin = _twin(cls) if len(body) >= TWIN_FIELDS else None
    if twin is None:
        source = head + "".join(f"    {line}\n" for line in body or ["pass"])
    else:
        namespace.update(_set_class=_SET_CLASS, _cls=cls, _twin=twin)
        stores = [f"        self.{f.name} = {f.name}\n" for f in fields(cls)]
        source = (
            head
            + "    if type(self) is _cls:\n"
            + "        _set_class(self, _twin)\n"
            + "".join(stores)
            + "        _set_class(self, _cls)\n"
            + "    else:\n"
            + "".join(f"        {line}\n" for line in body or ["pass"])
        )
    exec(source, namespace)
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init.__doc__ = cls.__init__.__doc__
    init.__annotations__ = dict(cls.__init__.__annotations__)
    cls.__init__ = init  # type: ignore[misc]
    return cls


TWIN_FIELDS = 5

# ``object.__class__``'s setter: checks that the two layouts agree, then swaps the type.
_SET_CLASS = object.__dict__["__class__"].__set__


def _twin(cls: type) -> type | None:
    """A plain class with ``cls``'s slots (the same layout) that an instance of ``cls``
    may wear while its fields are stored, or None when ``cls`` has slots of a base."""
    if cls.__bases__ != (object,):
        return None
    twin = type(f"_{cls.__name__}Twin", (), {"__slots__": cls.__dict__["__slots__"]})
    probe = object.__new__(cls)
    try:  # CPython refuses a swap between differing layouts: then no twin
        _SET_CLASS(probe, twin)
        _SET_CLASS(probe, cls)
    except TypeError:
        return None
    return twin
