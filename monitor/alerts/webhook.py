"""Optional webhook sink: every published alert event is POSTed as JSON to one URL.

Never blocks the stream: :meth:`WebhookSink.submit` puts the event on a bounded queue and returns at
once; a worker thread delivers, retrying network errors, 429 and 5xx answers with exponential backoff
(``Retry-After`` honoured, capped). A full queue drops the event (counted ``failed`` and logged). The body
is the event's JSON, exactly as on the alert topic; receivers dedupe by ``alert_id``, ``state`` and ``at``;
``dedup_key`` (also the ``X-Dedup-Key`` header) is stable over one episode, for PagerDuty-style receivers.

The URL is a secret (webhooks carry their token in the path, the query or ``user:password@``): logs and
errors show only :attr:`WebhookSink.target`, its scheme and host.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import random
import threading
from datetime import timedelta

import httpx

from monitor import __version__
from monitor.events import AlertFiring, AlertResolved
from monitor.feeds.urls import protect_logger, redact_text, redact_url
from monitor.metrics import AlerterMetrics

log = logging.getLogger(__name__)

_STOP = object()


class WebhookSink:
    """Delivers alert events to ``url`` from a worker thread (see the module docstring).

    ``url``: the real address (the secret value of ``alerter.webhook_url``); it must be ``http(s)``.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: timedelta = timedelta(seconds=10),
        max_retries: int = 5,
        queue_size: int = 1000,
        metrics: AlerterMetrics | None = None,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.target = redact_url(url, path=False)
        """The URL as logs may show it: scheme and host, everything else masked."""
        if not url.startswith(("http://", "https://")):
            raise ValueError("webhook URL must be http:// or https:// (the URL is secret: not shown)")
        self._url = url
        protect_logger("httpx").hide_path(url)
        self._max_retries = max_retries
        self._metrics = metrics
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._queue: queue.Queue[object] = queue.Queue(maxsize=queue_size)
        self._abort = threading.Event()
        self._client = httpx.Client(
            timeout=timeout.total_seconds(),
            transport=transport,
            headers={"User-Agent": f"india-us-monitor/{__version__} alert-webhook"},
        )
        self._thread = threading.Thread(target=self._work, name="alert-webhook", daemon=True)
        self._thread.start()
        log.info("webhook: alert events are POSTed to %s", self.target)

    def submit(self, event: AlertFiring | AlertResolved) -> bool:
        """Queue ``event`` for delivery; False (and counted as failed) if the queue is full."""
        try:
            self._queue.put_nowait(event)
            return True
        except queue.Full:
            log.warning(
                "webhook queue full; alert event dropped alert_id=%s state=%s", event.alert_id, event.state
            )
            self._count("failed")
            return False

    def pending(self) -> int:
        """Events waiting for delivery (approximate)."""
        return self._queue.qsize()

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued for up to ``timeout`` seconds, then stop (pending retries are dropped)."""
        with contextlib.suppress(queue.Full):
            self._queue.put(_STOP, timeout=timeout)
        self._thread.join(timeout)
        self._abort.set()
        self._thread.join(1.0)
        self._client.close()

    def _count(self, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.webhook_deliveries.labels(outcome).inc()

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            assert isinstance(item, AlertFiring | AlertResolved)
            self._deliver(item)

    def _deliver(self, event: AlertFiring | AlertResolved) -> None:
        body = event.encode()
        headers = {
            "Content-Type": "application/json",
            "X-Alert-Id": event.alert_id,
            "X-Dedup-Key": event.dedup_key,
        }
        for attempt in range(self._max_retries + 1):
            delay: float | None = None
            try:
                response = self._client.post(self._url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                reason = redact_text(f"{type(exc).__name__}: {exc}", self._url)
            else:
                if response.is_success:
                    self._count("ok")
                    log.debug("webhook delivered alert_id=%s state=%s", event.alert_id, event.state)
                    return
                reason = f"HTTP {response.status_code}"
                if response.status_code != 429 and response.status_code < 500:
                    self._count("failed")
                    log.warning(
                        "webhook %s refused alert_id=%s: %s (not retried)",
                        self.target,
                        event.alert_id,
                        reason,
                    )
                    return
                delay = _retry_after(response)
            if attempt == self._max_retries:
                break
            self._count("retry")
            backoff = min(self._backoff_cap, self._backoff_base * 2**attempt) * random.uniform(0.8, 1.2)
            wait = min(self._backoff_cap, delay) if delay is not None else backoff
            log.info(
                "webhook attempt %d failed (%s); retrying in %.1fs alert_id=%s",
                attempt + 1,
                reason,
                wait,
                event.alert_id,
            )
            if self._abort.wait(wait):
                break
        self._count("failed")
        log.warning(
            "webhook %s gave up on alert_id=%s state=%s: %s", self.target, event.alert_id, event.state, reason
        )


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
