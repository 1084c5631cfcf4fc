"""``monitor alerts tail``: print the alerts on the alert topic, as JSON lines or one readable line each.

Reads ``news.alerts`` on Kafka without a consumer group (it never moves anyone's offsets), or with
``--topic`` the routed alert topics named (``news.alerts.critical``; repeatable): from the end by default,
from the oldest alert with ``--from-beginning``. ``--max N`` stops after N printed alerts, ``--timeout S``
after S seconds without one; ``--severity`` and ``--subject`` filter (repeatable; a ``--topic`` that is a
subject label, such as ``--topic defence``, is read as ``--subject`` as it was before alert topics existed).
JSON lines are exactly the records' JSON; ``--format text`` (the default on a terminal) prints one line per
alert.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TextIO

from monitor.bus import Bus, Record, make_bus
from monitor.errors import ConfigError, DecodeError
from monitor.events import AlertFiring, AlertResolved, decode_alert, format_time
from monitor.settings import Settings
from monitor.signals import SUBJECTS
from pipelines.process import require_kafka, stop_on_signals

log = logging.getLogger(__name__)

AlertEvent = AlertFiring | AlertResolved


def format_text(event: AlertEvent) -> str:
    """One readable line: time, state, severity, rule, subject, value, summary, id."""
    state = "FIRING" if isinstance(event, AlertFiring) else "RESOLVED"
    value = "-" if event.value is None else f"{event.value:g}"
    return (
        f"{format_time(event.at)} {state:<8} {event.severity:<8} {event.rule} [{event.subject}] "
        f"{event.signal or 'value'} {event.window}={value}  {event.summary}  ({event.alert_id})"
    )


def matches(event: AlertEvent, *, severities: Iterable[str] | None, topics: Iterable[str] | None) -> bool:
    """Whether ``event`` passes the ``--severity`` and ``--topic`` filters."""
    if severities and event.severity not in set(severities):
        return False
    return not (topics and event.subject not in set(topics))


def tail_alerts(
    bus: Bus,
    topic: str | Sequence[str],
    *,
    out: TextIO,
    from_beginning: bool = False,
    max_alerts: int | None = None,
    timeout: float | None = None,
    severities: Iterable[str] | None = None,
    topics: Iterable[str] | None = None,
    text: bool = False,
    stop: threading.Event | None = None,
    ready: Callable[[], None] | None = None,
) -> int:
    """Print alerts from ``topic`` to ``out`` until ``max_alerts``, ``timeout`` idle seconds or ``stop``.

    ``topic``: the alert topic, or several. Returns the number printed. ``ready`` is called once the
    consumer is positioned (for tests and tools that publish after subscribing).
    """
    stop = stop or threading.Event()
    severities = set(severities) if severities else None
    topics = set(topics) if topics else None
    printed = 0
    last = time.monotonic()

    def emit(events: list[tuple[AlertEvent, int, int]]) -> bool:
        """Print ``events`` in event order (ties in log order); False once ``max_alerts`` are out."""
        nonlocal printed, last
        events.sort(key=lambda e: (e[0].at, e[1], e[2]))
        for event, _partition, _offset in events:
            if max_alerts is not None and printed >= max_alerts:
                return False
            if not matches(event, severities=severities, topics=topics):
                continue
            out.write((format_text(event) if text else event.model_dump_json()) + "\n")
            out.flush()
            printed += 1
            last = time.monotonic()
        return max_alerts is None or printed < max_alerts

    names = [topic] if isinstance(topic, str) else list(topic)
    with bus.consumer(names, group_id=None, from_beginning=from_beginning) as consumer:
        consumer.lag()  # resolves the starting position now, so nothing published after this is missed
        if ready is not None:
            ready()
        if from_beginning:
            # The history first, all of it in event order (partitions interleave arbitrarily).
            backlog: list[tuple[AlertEvent, int, int]] = []
            while not stop.is_set() and any(consumer.lag().values()):
                backlog += _decoded(consumer.poll(max_records=500, timeout=0.5))
            if not emit(backlog):
                return printed
        while not stop.is_set():
            if max_alerts is not None and printed >= max_alerts:
                break
            if timeout is not None and time.monotonic() - last >= timeout:
                break
            wait = 0.5 if timeout is None else max(0.05, min(0.5, timeout - (time.monotonic() - last)))
            if not emit(_decoded(consumer.poll(max_records=500, timeout=wait))):
                break
    return printed


def _decoded(records: Iterable[Record]) -> list[tuple[AlertEvent, int, int]]:
    events = []
    for record in records:
        try:
            events.append((decode_alert(record.value), record.partition, record.offset))
        except DecodeError as exc:
            log.warning(
                "skipping a record that is not an alert partition=%s offset=%s: %s",
                record.partition,
                record.offset,
                exc.reason,
            )
    return events


def tail(args: argparse.Namespace, settings: Settings) -> int:
    """``monitor alerts tail`` (needs Kafka: the in-process bus lives inside ``monitor run``)."""
    require_kafka(
        settings,
        why="Kafka bootstrap servers: `monitor alerts tail` reads the alert topic on Kafka "
        "(without Kafka there is no topic to read: `monitor run` prints the alerts itself)",
    )
    if args.max is not None and args.max < 1:
        raise ConfigError(
            source="command line", key="--max", expected="a positive number of alerts", got=args.max
        )
    text = args.format == "text" if args.format else sys.stdout.isatty()
    stop = stop_on_signals()
    subjects = [*(args.subject or ()), *(t for t in args.topic or () if t in SUBJECTS)]
    topics = [t for t in args.topic or () if t not in SUBJECTS]
    bus = make_bus(settings)
    partitions = getattr(bus, "topic_partitions", None)
    if topics:
        missing = [t for t in topics if partitions is not None and partitions(t) == 0]
        if missing:
            bus.close()
            raise ConfigError.of(
                "command line",
                [
                    ("--topic", "an existing alert topic (`monitor topics create` creates routed ones)", t)
                    for t in missing
                ],
            )
    else:
        topics = [settings.kafka.topics.alerts]
        if partitions is not None and partitions(topics[0]) == 0:
            bus.close()
            raise ConfigError(
                source="environment",
                key="MONITOR_KAFKA__TOPICS__ALERTS",
                expected=f"an existing alert topic; {topics[0]!r} does not exist yet "
                "(`monitor topics create`)",
            )
    try:
        tail_alerts(
            bus,
            topics,
            out=sys.stdout,
            from_beginning=args.from_beginning,
            max_alerts=args.max,
            timeout=args.timeout,
            severities=args.severity,
            topics=subjects or None,
            text=text,
            stop=stop,
        )
    except BrokenPipeError:  # `monitor alerts tail | head`: the reader left, which is fine
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        bus.close()
    return 0
