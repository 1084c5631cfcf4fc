"""The feed list as written in ``monitor.yaml``."""

from __future__ import annotations

import re
from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field, field_validator

from monitor.durations import Duration
from monitor.events import DEFAULT_VIEWPOINT, Viewpoint
from monitor.urls import is_http_url, redact_text, redact_url

_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


class FeedConfig(BaseModel):
    """One feed: a stable id, its URL, a display name, optionally its own poll interval, and its viewpoint.

    ``url`` may carry credentials (``https://user:password@host/feed``, ``?token=...``): they are used to
    fetch it and nowhere else; :attr:`shown_url` and :attr:`shown_name` are what records, logs and CLI
    output carry (secrets as ``***``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True, hide_input_in_errors=True)

    id: str
    url: str
    name: str
    interval: Duration = Field(default=timedelta(minutes=15))
    language: str | None = None
    tags: tuple[str, ...] = ()
    viewpoint: Viewpoint = DEFAULT_VIEWPOINT
    """Whose outlet this is: ``india``, ``us`` or ``international`` (the default: neither side of a
    divergence rule). Carried on every article as ``source.viewpoint``."""

    @property
    def shown_url(self) -> str:
        """The URL with its credentials masked (:func:`~monitor.urls.redact_url`)."""
        return redact_url(self.url)

    @property
    def shown_name(self) -> str:
        """The name, with the URL's secrets masked (a name that is the URL, from ``--feed URL``)."""
        return redact_text(self.name, self.url)

    @field_validator("id")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError("a lowercase slug of letters, digits, '-', '_' or '.' (at most 64)")
        return value

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not is_http_url(value):
            raise ValueError("an http:// or https:// URL with a host")
        return value

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: timedelta) -> timedelta:
        if not timedelta(minutes=1) <= value <= timedelta(days=1):
            raise ValueError("an interval between 1m and 24h")
        return value
