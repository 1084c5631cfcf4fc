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

import contextlib
import json
import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from monitor import __version__
from monitor.events import AlertFiring, AlertResolved, format_time
from monitor.feeds.urls import protect_logger, redact_text, redact_url
from monitor.metrics import AlerterMetrics

log = logging.getLogger(__name__)

AlertEvent = AlertFiring | AlertResolved

API_PATH = "/api/v2/alerts"
_STOP = object()
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


class AlertmanagerSink:
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
        self.target = redact_url(url, path=False)
        """The URL as logs may show it: scheme and host."""
        self._url = url.rstrip("/") + API_PATH
        protect_logger("httpx").hide_path(url)
        self._resolve_timeout = resolve_timeout
        self._repost = max(1.0, resolve_timeout.total_seconds() / 3)
        self._max_retries = max_retries
        self._metrics = metrics
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._clock = clock
        self._queue: queue.Queue[object] = queue.Queue(maxsize=queue_size)
        self._abort = threading.Event()
        self._firing: dict[str, AlertFiring] = {}  # worker thread only
        self._client = httpx.Client(
            timeout=timeout.total_seconds(),
            transport=transport,
            headers={"User-Agent": f"india-us-monitor/{__version__} alertmanager"},
        )
        self._thread = threading.Thread(target=self._work, name="alertmanager", daemon=True)
        self._thread.start()
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

    def pending(self) -> int:
        """Items waiting in the queue (approximate)."""
        return self._queue.qsize()

    def close(self, timeout: float = 5.0) -> None:
        """Post what is queued for up to ``timeout`` seconds, then stop (pending retries are dropped)."""
        with contextlib.suppress(queue.Full):
            self._queue.put(_STOP, timeout=timeout)
        self._thread.join(timeout)
        self._abort.set()
        self._thread.join(1.0)
        self._client.close()

    def _put(self, item: object, *, what: str) -> bool:
        try:
            self._queue.put_nowait(item)
            return True
        except queue.Full:
            log.warning("alertmanager queue full; dropped %s", what)
            self._count("failed")
            return False

    def _count(self, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.alertmanager_deliveries.labels(outcome).inc()

    # -- the worker ------------------------------------------------------------------------------------
    def _work(self) -> None:
        next_repost = time.monotonic() + self._repost
        while not self._abort.is_set():
            try:
                item = self._queue.get(timeout=max(0.0, next_repost - time.monotonic()))
            except queue.Empty:
                item = None
            if item is _STOP or self._abort.is_set():
                return
            if item is _FORGET:
                self._firing.clear()
            elif isinstance(item, AlertFiring):
                self._firing[item.alert_id] = item
                self._post([item], what=f"alert_id={item.alert_id} firing")
            elif isinstance(item, AlertResolved):
                self._firing.pop(item.alert_id, None)
                self._post([item], what=f"alert_id={item.alert_id} resolved")
            if time.monotonic() >= next_repost:
                if self._firing:
                    self._post(
                        list(self._firing.values()), what=f"{len(self._firing)} firing alerts (re-post)"
                    )
                next_repost = time.monotonic() + self._repost

    def _post(self, events: list[AlertEvent], *, what: str) -> None:
        reason = ""
        for attempt in range(self._max_retries + 1):
            now = self._clock()
            body = json.dumps(
                [postable(e, now=now, resolve_timeout=self._resolve_timeout) for e in events]
            ).encode("utf-8")
            try:
                response = self._client.post(
                    self._url, content=body, headers={"Content-Type": "application/json"}
                )
            except httpx.HTTPError as exc:
                reason = redact_text(f"{type(exc).__name__}: {exc}", self._url)
            else:
                if response.is_success:
                    self._count("ok")
                    log.debug("alertmanager accepted %s", what)
                    return
                reason = f"HTTP {response.status_code}: {response.text[:200]}"
                if response.status_code != 429 and response.status_code < 500:
                    self._count("failed")
                    log.warning("alertmanager %s refused %s: %s (not retried)", self.target, what, reason)
                    return
            if attempt == self._max_retries or self._abort.is_set():
                break
            self._count("retry")
            wait = min(self._backoff_cap, self._backoff_base * 2**attempt) * random.uniform(0.8, 1.2)
            log.info("alertmanager post failed (%s); retrying in %.1fs: %s", reason, wait, what)
            if self._abort.wait(wait):
                break
        self._count("failed")
        log.warning("alertmanager %s: gave up on %s: %s", self.target, what, reason)
