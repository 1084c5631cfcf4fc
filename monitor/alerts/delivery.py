"""What the webhook and Alertmanager sinks share: a bounded queue drained by a worker thread, and a POST
retried on network errors, 429 and 5xx answers with capped exponential backoff and jitter
(``Retry-After`` honoured, capped); any other answer is refused and not retried. Each outcome is counted
(``ok``, ``retry``, ``failed``) and logged with the sink's name and target (scheme and host only: the URL
may carry a secret).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import random
import threading
from collections.abc import Callable, Mapping
from datetime import timedelta

import httpx

from monitor import __version__
from monitor.urls import protect_logger, redact_text

log = logging.getLogger(__name__)

STOP = object()
"""Put on the queue by :meth:`QueuedPoster.close`: the worker returns when it takes it."""


class QueuedPoster:
    """The queue, worker thread and retrying HTTP client of one alert sink.

    ``name``: the sink in logs and the User-Agent; ``url``: the real address; ``target``: how logs show it;
    ``count(outcome)``: the sink's delivery counter. A subclass implements :meth:`_work` (take items from
    ``self._queue`` until :data:`STOP`) and calls :meth:`_start` at the end of its ``__init__``.
    """

    def __init__(
        self,
        name: str,
        url: str,
        *,
        target: str,
        count: Callable[[str], None],
        timeout: timedelta,
        max_retries: int,
        queue_size: int,
        backoff_base: float,
        backoff_cap: float,
        transport: httpx.BaseTransport | None,
    ) -> None:
        self.target = target
        """The URL as logs may show it: scheme and host, everything else masked."""
        self._name = name
        self._url = url
        protect_logger("httpx").hide_path(url)
        self._count = count
        self._max_retries = max_retries
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._queue: queue.Queue[object] = queue.Queue(maxsize=queue_size)
        self._abort = threading.Event()
        self._client = httpx.Client(
            timeout=timeout.total_seconds(),
            transport=transport,
            headers={"User-Agent": f"india-us-monitor/{__version__} {name}"},
        )
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)

    def _start(self) -> None:
        self._thread.start()

    def _work(self) -> None:
        raise NotImplementedError

    def pending(self) -> int:
        """Items waiting in the queue (approximate)."""
        return self._queue.qsize()

    def close(self, timeout: float = 5.0) -> None:
        """Post what is queued for up to ``timeout`` seconds, then stop (pending retries are dropped)."""
        with contextlib.suppress(queue.Full):
            self._queue.put(STOP, timeout=timeout)
        self._thread.join(timeout)
        self._abort.set()
        self._thread.join(1.0)
        self._client.close()

    def _put(self, item: object, *, what: str) -> bool:
        """Queue ``item``; False (counted ``failed``, logged) if the queue is full."""
        try:
            self._queue.put_nowait(item)
            return True
        except queue.Full:
            log.warning("%s queue full; dropped %s", self._name, what)
            self._count("failed")
            return False

    def _post(self, body: Callable[[], bytes], *, headers: Mapping[str, str], what: str) -> bool:
        """POST ``body()`` (made again for each attempt) until accepted, refused or out of retries;
        True if accepted."""
        reason = ""
        for attempt in range(self._max_retries + 1):
            delay: float | None = None
            try:
                response = self._client.post(self._url, content=body(), headers=dict(headers))
            except httpx.HTTPError as exc:
                reason = redact_text(f"{type(exc).__name__}: {exc}", self._url)
            else:
                if response.is_success:
                    self._count("ok")
                    log.debug("%s accepted %s", self._name, what)
                    return True
                reason = redact_text(f"HTTP {response.status_code}: {response.text[:200]}", self._url)
                if response.status_code != 429 and response.status_code < 500:
                    self._count("failed")
                    log.warning("%s %s refused %s: %s (not retried)", self._name, self.target, what, reason)
                    return False
                delay = retry_after(response)
            if attempt == self._max_retries or self._abort.is_set():
                break
            self._count("retry")
            backoff = min(self._backoff_cap, self._backoff_base * 2**attempt) * random.uniform(0.8, 1.2)
            wait = min(self._backoff_cap, delay) if delay is not None else backoff
            log.info(
                "%s attempt %d failed (%s); retrying in %.1fs: %s",
                self._name,
                attempt + 1,
                reason,
                wait,
                what,
            )
            if self._abort.wait(wait):
                break
        self._count("failed")
        log.warning("%s %s gave up on %s: %s", self._name, self.target, what, reason)
        return False


def retry_after(response: httpx.Response) -> float | None:
    """A ``Retry-After`` in seconds, if the answer has one."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
