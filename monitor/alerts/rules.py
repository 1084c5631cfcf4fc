"""Alert rules as written in ``monitor.yaml`` (placeholder: the alerter work replaces this)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class RuleConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")

    name: str
