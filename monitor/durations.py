"""Durations as people write them in config files: ``90s``, ``15m``, ``6h``, ``7d``, ``1h30m``."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_SECONDS = 100 * 365 * 86400  # far beyond any window or timeout; timedelta itself overflows at ~2.7M years


def parse_duration(value: Any) -> timedelta:
    """Parse ``value`` (a duration string, seconds as a number, or a timedelta) into a timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("a duration such as '15m', '6h' or '7d'")
    if isinstance(value, int | float):
        if not abs(value) <= MAX_SECONDS:  # also refuses NaN
            raise ValueError(f"a duration of at most {MAX_SECONDS // 86400 // 365} years")
        return timedelta(seconds=value)
    if not isinstance(value, str):
        raise ValueError("a duration such as '15m', '6h' or '7d'")
    text = value.strip().lower()
    negative = text.startswith("-")
    if negative:
        text = text[1:]
    pos = 0
    seconds = 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        seconds += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError("a duration such as '15m', '6h' or '7d'")
    if seconds > MAX_SECONDS:
        raise ValueError(f"a duration of at most {MAX_SECONDS // 86400 // 365} years")
    return timedelta(seconds=-seconds if negative else seconds)


def format_duration(value: timedelta) -> str:
    """The shortest exact form: 21600 s -> ``6h``; 5400 s -> ``90m``."""
    seconds = value.total_seconds()
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    for unit in ("w", "d", "h", "m", "s"):
        size = _UNITS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{sign}{int(seconds // size)}{unit}"
    return f"{sign}{seconds:g}s"


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]
"""A pydantic field type for durations written as strings."""
