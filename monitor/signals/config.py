"""The ``signals:`` section of ``monitor.yaml``: the event-time windows and the allowed lateness."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field, field_validator

from monitor.durations import Duration


class SignalsConfig(BaseModel):
    """Event-time windows of the signals and how late an article may arrive."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)

    windows: tuple[Duration, ...] = Field(
        default=(timedelta(hours=6), timedelta(hours=24), timedelta(days=7))
    )
    allowed_lateness: Duration = Field(default=timedelta(hours=6), ge=timedelta(0), le=timedelta(days=30))

    @field_validator("windows")
    @classmethod
    def _positive(cls, value: tuple[timedelta, ...]) -> tuple[timedelta, ...]:
        if not value or any(w <= timedelta(0) for w in value):
            raise ValueError("at least one positive window")
        return value
