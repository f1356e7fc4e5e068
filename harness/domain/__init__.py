"""PURE domain: the canonical promotion, its pricing semantics, dialects and lifecycle.

No I/O, no clock, no logging here: a test guards it.
"""
