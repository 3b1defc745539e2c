"""Job ids: UUIDv7 strings, strictly increasing within a process.

Layout (RFC 9562, UUID version 7 with a dedicated counter, "method 1"):

* 48 bits: Unix time in milliseconds,
* 4 bits: version (7),
* 12 + 30 bits: a counter that starts at a random value and grows by one per id,
* 2 bits: variant (``0b10``),
* 32 bits: random, drawn with the counter's start each millisecond.

The counter makes ids made in the same millisecond sort in creation order; the
clock is never allowed to go backwards (a stepped-back wall clock keeps the last
millisecond), so the ids are strictly increasing for the life of the process.
"""

from __future__ import annotations

import os
import threading
import time
from random import Random

__all__ = ["format_id", "new_id", "new_id_value"]

_COUNTER_BITS = 42
_COUNTER_MAX = (1 << _COUNTER_BITS) - 1
# Seed below half the range so a burst can count up for ~2 * 10**12 ids without overflow.
_SEED_BITS = _COUNTER_BITS - 1

_rng = Random(os.urandom(16))  # noqa: S311 - ids need uniqueness, not secrecy
_lock = threading.Lock()
_last_ms = 0
_counter = 0
_low = 0
_prefix = ""
_low_hex = ""
_head = ""


def new_id() -> str:
    """Return a new UUIDv7 string, greater than every id this process made before.

    The same id as ``format_id(new_id_value())``, formatted in parts: all but
    the counter's low 16 bits change rarely and are formatted only then.
    """
    with _lock:
        _tick()
        counter = _counter
        head = _head
        low = _low_hex
    return f"{head}{counter & 0xFFFF:04x}{low}"


def _tick() -> None:
    """Advance to the next id (under the lock): a new millisecond, or the next count in this one."""
    global _counter, _head
    ms = time.time_ns() // 1_000_000
    if ms > _last_ms:
        _next_ms(ms)
        return
    _counter += 1
    if _counter > _COUNTER_MAX:
        _next_ms(_last_ms + 1)
    elif not _counter & 0xFFFF:
        _head = _format_head()


def _format_head() -> str:
    """Everything before the counter's low 16 bits (under the lock)."""
    counter = _counter
    return f"{_prefix}{counter >> 30:03x}-{0x8000 | ((counter >> 16) & 0x3FFF):04x}-"


def _next_ms(ms: int) -> None:
    """Start millisecond *ms*: a new random counter seed and low bits (under the lock)."""
    global _last_ms, _counter, _low, _prefix, _low_hex, _head
    _last_ms = ms
    _counter = _rng.getrandbits(_SEED_BITS)
    _low = _rng.getrandbits(32)
    time_hex = f"{ms:012x}"
    _prefix = f"{time_hex[:8]}-{time_hex[8:]}-7"
    _low_hex = f"{_low:08x}"
    _head = _format_head()


def format_id(value: int) -> str:
    """Format a 128-bit id value as a canonical UUID string."""
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def new_id_value() -> int:
    """Return the 128-bit value of a new UUIDv7 (formatting is left to :func:`format_id`)."""
    with _lock:
        _tick()
        ms = _last_ms
        counter = _counter
        low = _low
    return (
        (ms << 80)
        | (0x7 << 76)
        | ((counter >> 30) << 64)
        | (0b10 << 62)
        | ((counter & 0x3FFFFFFF) << 32)
        | low
    )
