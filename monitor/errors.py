"""The project's exceptions: one root, structured arguments, third-party errors translated at the edge.

MonitorError
+-- ConfigError          a settings or config file value is wrong (file, key, expected)
+-- DecodeError          a record is not a valid event (reason); goes to the dead-letter topic
+-- BusError             the message bus failed (retriable or not)
+-- FetchError           a feed could not be fetched (outcome)
+-- ModelError           the classifier could not be loaded or run
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any


class MonitorError(Exception):
    """Root of every error this project raises on purpose."""


class ConfigError(MonitorError):
    """A configuration value is missing or wrong; names the file, the key and what was expected.

    ``more``: further problems found in the same pass (each a line like the first), so that one run of a
    command reports every mistake of a file, not one per run.
    """

    def __init__(
        self, *, source: str, key: str, expected: str, got: object = None, more: Sequence[str] = ()
    ) -> None:
        self.source = source
        self.key = key
        self.expected = expected
        self.got = got
        self.more = tuple(more)
        detail = problem_line(source, key, expected, got)
        if self.more:
            detail += f" (and {len(self.more)} more: " + "; ".join(self.more) + ")"
        super().__init__(detail)

    @classmethod
    def of(cls, source: str, problems: Sequence[tuple[str, str, object]]) -> ConfigError:
        """One error for every ``(key, expected, got)`` found in ``source``: the first, and ``more``."""
        (key, expected, got), rest = problems[0], problems[1:]
        more = [problem_line(source, k, e, g) for k, e, g in rest]
        return cls(source=source, key=key, expected=expected, got=got, more=more)


def problem_line(source: str, key: str, expected: str, got: object = None) -> str:
    """``source: key: expected ..., got ...``: how a configuration problem reads."""
    where = f"{source}: {key}" if key else source
    line = f"{where}: expected {expected}"
    if got is not None:
        line += f", got {got!r}"
    return line


def expectation(error: Mapping[str, Any]) -> str:
    """What a pydantic validation error (one item of ``ValidationError.errors()``) expected, worded to
    follow "expected" (pydantic's own messages are sentences such as "Input should be ...")."""
    kind = str(error.get("type", ""))
    ctx = error.get("ctx") or {}

    def shown(value: object) -> str:
        duration = value if isinstance(value, timedelta) else _pydantic_duration(value)
        if duration is not None:
            from monitor.durations import format_duration

            return format_duration(duration)
        return str(value)

    if kind == "extra_forbidden":
        return "no such key"
    if kind == "missing":
        return "this key (it is required)"
    if kind == "greater_than_equal":
        return f"a value of at least {shown(ctx.get('ge'))}"
    if kind == "greater_than":
        return f"a value above {shown(ctx.get('gt'))}"
    if kind == "less_than_equal":
        return f"a value of at most {shown(ctx.get('le'))}"
    if kind == "less_than":
        return f"a value below {shown(ctx.get('lt'))}"
    if kind == "literal_error":
        return f"one of {ctx.get('expected')}"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return "a whole number"
    if kind in ("float_parsing", "float_type"):
        return "a number"
    if kind in ("bool_parsing", "bool_type"):
        return "true or false"
    message = str(error.get("msg", "a valid value")).removeprefix("Value error, ")
    for prefix in ("Input should be ", "Value should be "):
        if message.startswith(prefix):
            return message.removeprefix(prefix)
    return message[:1].lower() + message[1:]


class DecodeError(MonitorError):
    """A record could not be decoded into an event; `reason` says why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class BusError(MonitorError):
    """The message bus failed. `retriable` errors may succeed if the operation is tried again."""

    def __init__(self, message: str, *, retriable: bool = False) -> None:
        self.retriable = retriable
        super().__init__(message)


class StoreError(MonitorError):
    """Local state (a SQLite file) could not be read or written; what was being done is not stored."""


class OpmlError(MonitorError):
    """The file is not OPML that can be read."""


class AlerterStateError(StoreError):
    """The alerter's state file could not be read or written."""


class FetchError(MonitorError):
    """A feed fetch failed; `outcome` is one of the named fetch outcomes."""

    def __init__(self, message: str, *, outcome: str) -> None:
        self.outcome = outcome
        super().__init__(message)


class ModelError(MonitorError):
    """The classifier could not be loaded or could not score an item."""


_DURATION_PART = re.compile(r"(\d+) (day|hour|minute|second|millisecond|microsecond)s?")


def _pydantic_duration(value: object) -> timedelta | None:
    """pydantic words a timedelta bound as ``"1 day and 5 seconds"``: read it back (None if it is not)."""
    if not isinstance(value, str):
        return None
    parts = value.split(" and ")
    total = timedelta(0)
    for part in parts:
        match = _DURATION_PART.fullmatch(part.strip())
        if match is None:
            return None
        total += timedelta(**{match.group(2) + "s": int(match.group(1))})
    return total


def shown_input(value: object) -> object:
    """A rejected value as the user wrote it, where validation had already parsed it (a duration)."""
    if isinstance(value, timedelta):
        from monitor.durations import format_duration

        return format_duration(value)
    return value
