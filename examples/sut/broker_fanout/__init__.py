"""An event-driven promotion fan-out through Redis Streams: a system under test for
promoharness (driver: ``examples/sut/broker-fanout.yaml``), the "event-driven distribution"
pattern, written without reusing anything of ``harness/``.

- ``front``: the HTTP front (FastAPI). Each create/publish/rollback is checked and
  published ONCE to the stream ``bf:changes``; it starts ``redis-server`` on a free
  loopback port (unless ``--redis-url``) and the consumer processes, and stops them on exit.
- ``consumer``: one process per consumer; in it, one reader per channel's consumer group
  (``ch:pos``, ``ch:ecommerce``...), delivering each event to the channel's endpoints in
  scope with versioning (apply at v, revoke at the tombstone v+1), exponential backoff with
  full jitter, Retry-After honoured, a dead-letter stream (``bf:dead``) after N attempts,
  a processed-set per event (``bf:done:{event}``) so a redelivered event never delivers
  twice, and leases: an event whose consumer died is claimed (XAUTOCLAIM) by another.
- ``scope``: the scope rules of docs/scope.md, stated again here (an independent system).

Run it against an estate (``promoharness estate SCENARIO``, or ``live --sut``), from the
repository root::

    python -m examples.sut.broker_fanout --port 9330 --estate http://127.0.0.1:8701 --speed 10
"""
