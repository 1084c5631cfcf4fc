"""``monitor status``: where things stand now, in one table (``--format json`` for scripts).

Embedded mode (no Kafka configured) reads the local state of ``monitor run``, read-only and safe beside a
running one: the alerter's state file (the signal values last published, which rules are firing) and the
alert records of the durable bus log. On Kafka it reads the compacted ``news.signals`` topic (the latest
record per signal key) and ``news.alerts`` (an episode whose latest event is a firing is firing), without
a consumer group. The table itself is :mod:`monitor.status`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TypeVar

from monitor.bus import BUS_LOG_FILE, Record, make_bus
from monitor.bus.buslog import read_topic
from monitor.config import load_config
from monitor.errors import ConfigError, DecodeError
from monitor.events import AlertFiring, AlertResolved, SignalUpdated, decode, decode_alert
from monitor.settings import Settings
from monitor.signals.windows import from_us
from monitor.status import Status, build_status, format_text, to_json
from monitor.store.alerts import AlerterStore

log = logging.getLogger(__name__)


E = TypeVar("E", AlertFiring | AlertResolved, SignalUpdated)


def latest(
    records: Iterable[Record], decoder: Callable[[bytes], E], key: Callable[[E], str], what: str
) -> dict[str, E]:
    """The latest event per ``key`` (by its ``at``, then log order); undecodable records skipped."""
    held: dict[str, tuple[tuple[datetime, int, int], E]] = {}
    for record in records:
        try:
            event = decoder(record.value)
        except DecodeError as exc:
            log.warning("skipping a record that is not %s offset=%s: %s", what, record.offset, exc.reason)
            continue
        order = (event.at, record.partition, record.offset)
        before = held.get(key(event))
        if before is None or before[0] <= order:
            held[key(event)] = (order, event)
    return {k: event for k, (_, event) in held.items()}


def latest_alerts(records: Iterable[Record]) -> dict[str, AlertFiring | AlertResolved]:
    """The latest lifecycle event per ``alert_id``."""
    return latest(records, decode_alert, lambda e: e.alert_id, "an alert")


def embedded_status(settings: Settings) -> Status:
    """The status from ``monitor run``'s local state."""
    from pipelines.alerter import STATE_FILE

    path = settings.alerter.state_path or settings.state_path(STATE_FILE)
    if not path.exists():
        raise ConfigError(
            source="command line",
            key="--state-dir",
            expected=f"the state folder of `monitor run` (no alerter state at {path}; run `monitor run` "
            "first, or set KAFKA_BOOTSTRAP_SERVERS to read the Kafka topics)",
            got=str(settings.state_dir),
        )
    store = AlerterStore(path)
    try:
        state = store.load()
    finally:
        store.close()
    firing_ids = {r.alert_id for r in state.rules.values() if r.status == "firing" and r.alert_id}
    events = latest_alerts(read_topic(settings.state_path(BUS_LOG_FILE), settings.kafka.topics.alerts))
    firing = [e for e in events.values() if isinstance(e, AlertFiring) and e.alert_id in firing_ids]
    missing = firing_ids - {e.alert_id for e in firing}
    if missing:
        log.warning(
            "%d firing alerts have no record left in the local bus log: %s", len(missing), sorted(missing)
        )
    last_tick = state.signals.last_tick
    return build_status(
        state.signals.published,
        windows=load_config(settings.config).signals.windows,
        firing=firing,
        as_of=None if last_tick is None else from_us(last_tick),
        source=f"local state in {settings.state_dir}",
    )


def kafka_status(settings: Settings) -> Status:
    """The status from the signals and alert topics on Kafka."""
    topics = settings.kafka.topics
    bus = make_bus(settings)
    try:
        records: list[Record] = []
        with bus.consumer([topics.signals, topics.alerts], group_id=None, from_beginning=True) as consumer:
            while any(consumer.lag().values()):
                records += consumer.poll(max_records=2000, timeout=1.0)
    finally:
        bus.close()
    points = latest(
        (r for r in records if r.topic == topics.signals),
        lambda v: decode(SignalUpdated, v),
        lambda p: p.key,
        "a signal",
    )
    events = latest_alerts(r for r in records if r.topic == topics.alerts)
    return build_status(
        {key: (p.value, p.articles, p.stories) for key, p in points.items()},
        windows=load_config(settings.config).signals.windows,
        firing=[e for e in events.values() if isinstance(e, AlertFiring)],
        as_of=max((p.at for p in points.values()), default=None),
        source=f"Kafka topics {topics.signals} and {topics.alerts} at {settings.kafka.bootstrap_servers}",
    )


def main(args: argparse.Namespace, settings: Settings) -> int:
    status = kafka_status(settings) if settings.uses_kafka else embedded_status(settings)
    if args.format == "json":
        sys.stdout.write(json.dumps(to_json(status), indent=None) + "\n")
    else:
        sys.stdout.write(format_text(status))
    return 0
