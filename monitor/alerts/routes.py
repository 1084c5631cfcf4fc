"""Alert routes as written in the ``routes:`` section of ``monitor.yaml``: which alert topics, besides the
alert topic itself (``news.alerts``, which always gets every alert), an alert event also goes to.

Each route names one Kafka ``topic`` and matches alert events by ``severity``, ``subject`` and ``rule``
(each one value or a list; a route matches when every matcher it gives matches; no matcher: every alert).
An event goes to every topic whose route matches it, once. Example::

    routes:
      - {topic: news.alerts.critical, severity: critical}
      - {topic: news.alerts.trade_tariffs, subject: trade_tariffs}
      - {topic: news.alerts.trade-desk, rule: [tariff_strain_high, trade_cooperation_surge]}

``monitor topics create`` creates the routed topics (with the alert topic's layout); ``monitor alerter``
refuses to start when one does not exist.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from monitor.events import OVERALL, TOPICS, AlertFiring, AlertResolved, Severity
from monitor.signals import SUBJECTS

_KAFKA_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")


def _as_tuple(value: Any) -> Any:
    if isinstance(value, str):
        return (value,)
    return value


class RouteConfig(BaseModel):
    """One route: the alert events matching its ``severity``, ``subject`` and ``rule`` go to ``topic``."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)

    topic: str
    severity: tuple[Severity, ...] = ()
    subject: tuple[str, ...] = ()
    rule: tuple[str, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _lists(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: _as_tuple(v) if k != "topic" else v for k, v in data.items()}
        return data

    @field_validator("topic")
    @classmethod
    def _legal_topic(cls, value: str) -> str:
        if value in (".", "..") or not _KAFKA_TOPIC.match(value):
            raise ValueError("a Kafka topic name: 1 to 249 letters, digits, '.', '_' or '-'")
        if value in SUBJECTS:  # `monitor alerts tail --topic defence` means the subject
            raise ValueError(f"a topic name that is not a subject label, such as 'news.alerts.{value}'")
        return value

    @field_validator("subject")
    @classmethod
    def _known_subjects(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [s for s in value if s not in SUBJECTS]
        if unknown:
            raise ValueError(f"topics among {list(TOPICS)} or {OVERALL!r}; unknown {unknown}")
        return value

    def matches(self, event: AlertFiring | AlertResolved) -> bool:
        """Whether ``event`` takes this route."""
        return (
            (not self.severity or event.severity in self.severity)
            and (not self.subject or event.subject in self.subject)
            and (not self.rule or event.rule in self.rule)
        )


def routed_topics(routes: Iterable[RouteConfig]) -> list[str]:
    """Every topic the routes name, once each, in config order."""
    return list(dict.fromkeys(route.topic for route in routes))


def route(routes: Sequence[RouteConfig], event: AlertFiring | AlertResolved) -> list[str]:
    """The topics ``event`` goes to besides the alert topic, once each, in config order."""
    return list(dict.fromkeys(r.topic for r in routes if r.matches(event)))
