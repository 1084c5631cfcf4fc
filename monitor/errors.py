"""The project's exceptions: one root, structured arguments, third-party errors translated at the edge.

MonitorError
+-- ConfigError          a settings or config file value is wrong (file, key, expected)
+-- DecodeError          a record is not a valid event (reason); goes to the dead-letter topic
+-- BusError             the message bus failed (retriable or not)
+-- FetchError           a feed could not be fetched (outcome)
+-- ModelError           the classifier could not be loaded or run
"""

from __future__ import annotations


class MonitorError(Exception):
    """Root of every error this project raises on purpose."""


class ConfigError(MonitorError):
    """A configuration value is missing or wrong; names the file, the key and what was expected."""

    def __init__(self, *, source: str, key: str, expected: str, got: object = None) -> None:
        self.source = source
        self.key = key
        self.expected = expected
        self.got = got
        where = f"{source}: {key}" if key else source
        detail = f"{where}: expected {expected}"
        if got is not None:
            detail += f", got {got!r}"
        super().__init__(detail)


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


class FetchError(MonitorError):
    """A feed fetch failed; `outcome` is one of the named fetch outcomes."""

    def __init__(self, message: str, *, outcome: str) -> None:
        self.outcome = outcome
        super().__init__(message)


class ModelError(MonitorError):
    """The classifier could not be loaded or could not score an item."""
