"""The YAML config file: feeds, signal windows and alert rules.

``load_config(path)`` returns a validated :class:`MonitorConfig` or raises :class:`ConfigError` naming the
file, the key (``rules[2].window``) and what was expected. Without a path the packaged default
(``monitor/default.yaml``: the default feed list and rule set) is used.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    ModelWrapValidatorHandler,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from monitor.alerts.routes import RouteConfig
from monitor.alerts.rules import RuleConfig
from monitor.errors import ConfigError, expectation, shown_input
from monitor.feeds.model import FeedConfig
from monitor.signals.config import SignalsConfig
from monitor.urls import redact_url

DEFAULT_CONFIG = "default.yaml"


class MonitorConfig(BaseModel):
    """The whole config file."""

    # A ValidationError never quotes the input (a feed URL may hold a password): parse_config() shows the
    # rejected value itself, redacted.
    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True, hide_input_in_errors=True)

    feeds: tuple[FeedConfig, ...] = ()
    signals: SignalsConfig = SignalsConfig()
    rules: tuple[RuleConfig, ...] = ()
    routes: tuple[RouteConfig, ...] = ()
    """Alert topics besides the alert topic (see :mod:`monitor.alerts.routes`)."""

    @model_validator(mode="after")
    def _unique(self) -> MonitorConfig:
        for kind, names in (("feeds", [f.id for f in self.feeds]), ("rules", [r.name for r in self.rules])):
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"unique {kind} ids/names; duplicated: {dupes}")
        return self

    @model_validator(mode="wrap")
    @classmethod
    def _known_rules(cls, data: Any, handler: ModelWrapValidatorHandler[MonitorConfig]) -> MonitorConfig:
        """A route's ``rule`` names rules of this file (the error points at the route's key)."""
        config = handler(data)
        names = {r.name for r in config.rules}
        errors = [
            InitErrorDetails(
                type=PydanticCustomError("unknown_rule", "a rule named in this file's rules", {}),
                loc=("routes", i, "rule"),
                input=n,
            )
            for i, route in enumerate(config.routes)
            for n in route.rule
            if n not in names
        ]
        if errors:
            raise ValidationError.from_exception_data(cls.__name__, errors)
        return config


def _key(loc: tuple[int | str, ...]) -> str:
    key = ""
    for part in loc:
        key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
    return key


def _shown(value: Any) -> Any:
    """A rejected value as it may be printed: URLs in it (a feed's, with a password) redacted."""
    if isinstance(value, str):
        return redact_url(value)
    if isinstance(value, dict):
        return {k: _shown(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_shown(v) for v in value]
    return shown_input(value)


def parse_config(data: Any, *, source: str) -> MonitorConfig:
    """Validate already-loaded YAML data; ``source`` names it in errors."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(source=source, key="", expected="a mapping with feeds, signals and rules")
    try:
        return MonitorConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and p.startswith("function-")))
            problems.append((_key(loc), expectation(error), _shown(error.get("input"))))
        raise ConfigError.of(source, problems) from exc


def load_config(path: Path | None) -> MonitorConfig:
    """Load and validate the config file at ``path``, or the packaged default when ``path`` is None."""
    if path is None:
        text = resources.files("monitor").joinpath(DEFAULT_CONFIG).read_text(encoding="utf-8")
        return parse_config(yaml.safe_load(text), source=f"<packaged {DEFAULT_CONFIG}>")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(source=str(path), key="", expected=f"a readable file ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(source=str(path), key="", expected="UTF-8 text") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(source=str(path), key=where, expected=f"valid YAML ({exc})") from exc
    return parse_config(data, source=str(path))
