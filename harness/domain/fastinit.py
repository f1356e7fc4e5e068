"""``fast_init``: a cheaper constructor for frozen, slotted dataclasses on hot paths.

A frozen dataclass's generated ``__init__`` stores each field through
``object.__setattr__`` — about twice what storing through the slot's own descriptor
costs. The commands and events a delivery makes (``SendDelivery``, ``DeliveryResult``,
``Request``, ...) are built tens of thousands of times a second in a virtual-time run, so
this decorator swaps in an ``__init__`` with the same signature (names, order, defaults)
that stores through the slot descriptors. Everything else stays the dataclass's own:
assignment after construction still raises ``FrozenInstanceError``, equality, hashing,
``repr``, ``replace`` and pickling are unchanged.
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
        body.append(f"    _set_{f.name}(self, {f.name})\n")
    # Init-only pseudo-fields (InitVar) are parameters of the generated __init__ that
    # ``fields`` does not list: refuse rather than drop them.
    expected = [name for name in inspect.signature(cls.__init__).parameters][1:]
    if expected != [f.name for f in fields(cls)]:
        raise TypeError(f"{cls.__name__}: fast_init takes no init-only (InitVar) fields")
    source = f"def __init__(self, {', '.join(signature)}):\n" + ("".join(body) or "    pass\n")
    exec(source, namespace)
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init.__doc__ = cls.__init__.__doc__
    init.__annotations__ = dict(cls.__init__.__annotations__)
    cls.__init__ = init  # type: ignore[misc]
    return cls
