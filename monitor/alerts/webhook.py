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

import logging
from datetime import timedelta

import httpx

from monitor.alerts.delivery import STOP, QueuedPoster
from monitor.events import AlertFiring, AlertResolved
from monitor.metrics import AlerterMetrics
from monitor.urls import redact_url

log = logging.getLogger(__name__)


class WebhookSink(QueuedPoster):
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
        target = redact_url(url, path=False)
        if not url.startswith(("http://", "https://")):
            raise ValueError("webhook URL must be http:// or https:// (the URL is secret: not shown)")

        def count(outcome: str) -> None:
            if metrics is not None:
                metrics.webhook_deliveries.labels(outcome).inc()

        super().__init__(
            "alert-webhook",
            url,
            target=target,
            count=count,
            timeout=timeout,
            max_retries=max_retries,
            queue_size=queue_size,
            backoff_base=backoff_base,
            backoff_cap=backoff_cap,
            transport=transport,
        )
        self._start()
        log.info("webhook: alert events are POSTed to %s", self.target)

    def submit(self, event: AlertFiring | AlertResolved) -> bool:
        """Queue ``event`` for delivery; False (and counted as failed) if the queue is full."""
        return self._put(event, what=f"alert_id={event.alert_id} state={event.state}")

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is STOP:
                return
            assert isinstance(item, AlertFiring | AlertResolved)
            headers = {
                "Content-Type": "application/json",
                "X-Alert-Id": item.alert_id,
                "X-Dedup-Key": item.dedup_key,
            }
            what = f"alert_id={item.alert_id} state={item.state}"
            self._post(item.encode, headers=headers, what=what)
