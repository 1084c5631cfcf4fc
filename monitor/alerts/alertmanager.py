"""Optional Alertmanager sink: published alert events are posted to Prometheus Alertmanager's API v2.

Alertmanager then does what people expect of alerting: routing to receivers, grouping, inhibition,
silences, repeat intervals and resolved notices. Each alert episode is one Alertmanager alert, identified
by its labels (stable over the episode, so a re-post, a re-notification or a restarted alerter updates the
same alert and never makes a second one):

* labels: ``alertname`` (the rule), ``severity``, ``subject``, ``signal``, ``window`` and ``dedup_key``
  (the episode's :attr:`~monitor.events.AlertFiring.dedup_key`, its ``alert_id``);
* annotations: ``summary`` (the one-line summary), ``evidence`` (the top stories' titles and links, one a
  line, with their outlet counts), ``value``, ``threshold``, ``baseline``, ``alert_id``, ``dedup_key``;
* ``startsAt``: the episode's start; ``endsAt``: on a resolved event, its time; while firing, now plus
  ``resolve_timeout``. A firing alert is posted again every third of ``resolve_timeout`` until it resolves,
  so Alertmanager never times it out while it fires, and times it out if this alerter is gone for good.

Never blocks the stream: :meth:`AlertmanagerSink.submit` queues the event and returns; a worker thread
posts, retrying network errors, 429 and 5xx with capped exponential backoff. A full queue drops the event
(counted ``failed``, logged); the next re-post of a firing alert still reaches Alertmanager.
"""

from __future__ import annotations

import json
import logging
import queue
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from monitor.alerts.delivery import STOP, QueuedPoster
from monitor.events import AlertFiring, AlertResolved, format_time
from monitor.metrics import AlerterMetrics
from monitor.urls import redact_url

log = logging.getLogger(__name__)

AlertEvent = AlertFiring | AlertResolved

API_PATH = "/api/v2/alerts"
_FORGET = object()


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _number(value: float | None) -> str:
    return "none" if value is None else f"{value:g}"


def alert_labels(event: AlertEvent) -> dict[str, str]:
    """The Alertmanager labels of ``event``: the same on every event of one episode."""
    return {
        "alertname": event.rule,
        "severity": event.severity,
        "subject": event.subject,
        "signal": event.signal,
        "window": event.window,
        "dedup_key": event.dedup_key,
    }


def alert_annotations(event: AlertEvent) -> dict[str, str]:
    """The Alertmanager annotations of ``event``: what a notification shows a reader."""
    lines = []
    for item in event.evidence:
        outlets = f" ({item.outlets} outlets)" if item.outlets > 1 else ""
        lines.append(f"{item.title}{outlets} {item.url}".strip())
    return {
        "summary": event.summary,
        "evidence": "\n".join(lines),
        "value": _number(event.value),
        "threshold": _number(event.threshold),
        "baseline": _number(event.baseline),
        "alert_id": event.alert_id,
        "dedup_key": event.dedup_key,
    }


def postable(event: AlertEvent, *, now: datetime, resolve_timeout: timedelta) -> dict[str, Any]:
    """One ``postableAlert`` of the API v2 for ``event`` (firing: ends at ``now + resolve_timeout``)."""
    ends = event.at if isinstance(event, AlertResolved) else now + resolve_timeout
    return {
        "labels": alert_labels(event),
        "annotations": alert_annotations(event),
        "startsAt": format_time(event.started_at),
        "endsAt": format_time(max(ends, event.started_at)),
    }


class AlertmanagerSink(QueuedPoster):
    """Posts alert events to the Alertmanager at ``url`` from a worker thread (see the module docstring).

    ``url``: Alertmanager's base URL (``http://alertmanager:9093``); the API path is added. ``clock``: the
    wall clock (``endsAt`` of firing alerts: Alertmanager compares it with its own clock).
    """

    def __init__(
        self,
        url: str,
        *,
        resolve_timeout: timedelta = timedelta(minutes=5),
        timeout: timedelta = timedelta(seconds=10),
        max_retries: int = 5,
        queue_size: int = 1000,
        metrics: AlerterMetrics | None = None,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
        clock: Callable[[], datetime] = _utc_now,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError("Alertmanager URL must be http:// or https://")

        def count(outcome: str) -> None:
            if metrics is not None:
                metrics.alertmanager_deliveries.labels(outcome).inc()

        super().__init__(
            "alertmanager",
            url.rstrip("/") + API_PATH,
            target=redact_url(url, path=False),
            count=count,
            timeout=timeout,
            max_retries=max_retries,
            queue_size=queue_size,
            backoff_base=backoff_base,
            backoff_cap=backoff_cap,
            transport=transport,
        )
        self._resolve_timeout = resolve_timeout
        self._repost = max(1.0, resolve_timeout.total_seconds() / 3)
        self._clock = clock
        self._firing: dict[str, AlertFiring] = {}  # worker thread only
        self._start()
        log.info(
            "alertmanager: alert events are posted to %s%s (firing ones again every %.0fs)",
            self.target,
            API_PATH,
            self._repost,
        )

    # -- the stage's side -------------------------------------------------------------------------------
    def submit(self, event: AlertEvent) -> bool:
        """Queue ``event`` for posting; False (and counted as failed) if the queue is full."""
        return self._put(event, what=f"alert_id={event.alert_id} state={event.state}")

    def resume(self, events: Iterable[AlertFiring]) -> None:
        """Firing alerts published before this alerter started (or took over): post them again and keep
        them alive. Their labels are those already in Alertmanager: no second alert is made."""
        for event in events:
            self.submit(event)

    def forget(self) -> None:
        """Stop re-posting the firing alerts (this alerter stands by; the active one keeps them alive)."""
        self._put(_FORGET, what="forget")

    # -- the worker ------------------------------------------------------------------------------------
    def _work(self) -> None:
        next_repost = time.monotonic() + self._repost
        while not self._abort.is_set():
            try:
                item = self._queue.get(timeout=max(0.0, next_repost - time.monotonic()))
            except queue.Empty:
                item = None
            if item is STOP or self._abort.is_set():
                return
            if item is _FORGET:
                self._firing.clear()
            elif isinstance(item, AlertFiring):
                self._firing[item.alert_id] = item
                self._send([item], what=f"alert_id={item.alert_id} firing")
            elif isinstance(item, AlertResolved):
                self._firing.pop(item.alert_id, None)
                self._send([item], what=f"alert_id={item.alert_id} resolved")
            if time.monotonic() >= next_repost:
                if self._firing:
                    self._send(
                        list(self._firing.values()), what=f"{len(self._firing)} firing alerts (re-post)"
                    )
                next_repost = time.monotonic() + self._repost

    def _send(self, events: list[AlertEvent], *, what: str) -> None:
        def body() -> bytes:  # endsAt of firing alerts counts from each attempt
            now = self._clock()
            return json.dumps(
                [postable(e, now=now, resolve_timeout=self._resolve_timeout) for e in events]
            ).encode("utf-8")

        self._post(body, headers={"Content-Type": "application/json"}, what=what)
