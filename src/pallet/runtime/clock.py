"""Timestamps in the RFC 3339 form runc writes (UTC, nanoseconds), without ``datetime``."""

from __future__ import annotations

import time


def rfc3339_now() -> str:
    """The current time as ``2026-11-28T02:01:07.123456789Z``."""
    ns = time.time_ns()
    seconds, fraction = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{fraction:09d}Z"
