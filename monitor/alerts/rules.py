"""Alert rules as written in the ``rules:`` section of ``monitor.yaml``.

Every rule watches one signal (``stance_index``, ``volume``, ``stories`` or ``strained_share``) of one
subject (a topic label or ``overall``) over one event-time window, and has exactly one condition:

``threshold``
    Fire when the value crosses a level (``above: 0.4`` or ``below: -0.3``); clear only when it crosses
    back past another (``clear_below`` / ``clear_above``, hysteresis; default: the firing level).
``change``
    The rule's (short) window against a longer ``baseline`` window of the same signal: fire when they
    differ by at least ``delta``, or by at least ``z`` standard errors (stance index and strained share
    only), ``up``, ``down`` or ``either``.
``anomaly``
    Volume anomaly: the count (``stories`` or ``volume``) in the window is at least ``k`` standard
    deviations above the mean of the same-sized windows in the ``baseline`` period before it.
``divergence``
    Two viewpoints of the outlets (``between: [india, us]``) read the subject differently: their values
    over the window (stance index or strained share, each over that viewpoint's outlets only) differ by at
    least ``delta``, either way; clear only when the gap narrows below ``clear_delta`` (default: ``delta``).
    ``min_stories`` applies to each side.
``burst``
    Breaking news confirmed by several sources: at least ``stories`` distinct stories from at least
    ``outlets`` outlets, each with stance below ``stance_below`` (or above ``stance_above``), within the
    window (``signal: stories``). Evaluated when the articles arrive, not only at the next evaluation step,
    and fires at once (``for`` must be 0); it clears when fewer than ``clear_stories`` (default:
    ``stories``) such stories are left in the window. Example::

        - name: tariff_shock
          severity: critical
          subject: trade_tariffs
          signal: stories
          window: 1h
          burst: {stories: 3, outlets: 2, stance_below: -0.4}
          keep_firing_for: 1h

Common options: ``min_stories`` (distinct stories the window must hold before the rule may fire),
``for`` (how long the condition must hold before the alert fires; until then it is pending),
``keep_firing_for`` (how long a firing alert stays firing after its condition cleared, against flapping)
and ``renotify`` (re-publish a firing alert at this interval). Example::

    - name: tariff_strain_high
      severity: critical
      subject: trade_tariffs
      signal: stance_index
      window: 24h
      threshold: {below: -0.3, clear_above: -0.15}
      min_stories: 3
      for: 30m
      keep_firing_for: 2h
      renotify: 12h

A rule that cannot work is rejected when the config loads, with an error that names the rule and the field.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from monitor.durations import Duration, format_duration
from monitor.events import OVERALL, TOPICS, Severity, Viewpoint
from monitor.signals import SIGNALS, SUBJECTS, SignalName

__all__ = [
    "SIGNALS",
    "SUBJECTS",
    "AnomalyCondition",
    "BurstCondition",
    "ChangeCondition",
    "DivergenceCondition",
    "RuleConfig",
    "ThresholdCondition",
]

Direction = Literal["up", "down", "either"]

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")

# The range each signal's values live in (inclusive); levels outside it could never be crossed.
SIGNAL_RANGE: dict[str, tuple[float, float]] = {
    "stance_index": (-1.0, 1.0),
    "strained_share": (0.0, 1.0),
    "volume": (0.0, math.inf),
    "stories": (0.0, math.inf),
}


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)


def _check_level(value: float | None, signal: str, what: str) -> None:
    if value is None:
        return
    low, high = SIGNAL_RANGE[signal]
    if not low <= value <= high:
        raise ValueError(f"{what} {value} is outside the range of {signal} [{low:g}, {high:g}]")


def _clear_within(name: str, level: float | None, clear: float | None) -> None:
    """A clear level (``clear_<name>``) beyond its firing level could never be reached before firing."""
    if level is not None and clear is not None and clear > level:
        raise ValueError(f"clear_{name} {clear} must not exceed {name} {level}")


class ThresholdCondition(_Strict):
    """Fire when the value crosses one level; clear only when it crosses back past another."""

    above: float | None = None
    below: float | None = None
    clear_below: float | None = None
    clear_above: float | None = None

    @model_validator(mode="after")
    def _one_side(self) -> Self:
        if (self.above is None) == (self.below is None):
            raise ValueError("exactly one of 'above' or 'below'")
        if self.above is not None:
            if self.clear_above is not None:
                raise ValueError("'clear_above' goes with 'below'; with 'above' use 'clear_below'")
            if self.clear_below is not None and self.clear_below > self.above:
                raise ValueError(
                    f"clear_below {self.clear_below} is on the wrong side: it must be at or below "
                    f"above {self.above}"
                )
        if self.below is not None:
            if self.clear_below is not None:
                raise ValueError("'clear_below' goes with 'above'; with 'below' use 'clear_above'")
            if self.clear_above is not None and self.clear_above < self.below:
                raise ValueError(
                    f"clear_above {self.clear_above} is on the wrong side: it must be at or above "
                    f"below {self.below}"
                )
        return self

    @property
    def direction(self) -> Literal["up", "down"]:
        return "up" if self.above is not None else "down"

    @property
    def fire_level(self) -> float:
        level = self.above if self.above is not None else self.below
        assert level is not None
        return level

    @property
    def clear_level(self) -> float:
        clear = self.clear_below if self.above is not None else self.clear_above
        return self.fire_level if clear is None else clear


class ChangeCondition(_Strict):
    """The rule's window against a longer baseline window: by ``delta`` or by ``z`` standard errors."""

    baseline: Duration
    delta: float | None = Field(default=None, gt=0)
    z: float | None = Field(default=None, gt=0)
    direction: Direction = "either"
    clear_delta: float | None = Field(default=None, ge=0)
    clear_z: float | None = Field(default=None, ge=0)
    min_baseline_stories: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _one_measure(self) -> Self:
        if (self.delta is None) == (self.z is None):
            raise ValueError("exactly one of 'delta' or 'z'")
        if self.delta is None and self.clear_delta is not None:
            raise ValueError("'clear_delta' goes with 'delta'; with 'z' use 'clear_z'")
        if self.z is None and self.clear_z is not None:
            raise ValueError("'clear_z' goes with 'z'; with 'delta' use 'clear_delta'")
        _clear_within("delta", self.delta, self.clear_delta)
        _clear_within("z", self.z, self.clear_z)
        return self

    @property
    def fire_level(self) -> float:
        level = self.delta if self.delta is not None else self.z
        assert level is not None
        return level

    @property
    def clear_level(self) -> float:
        clear = self.clear_delta if self.delta is not None else self.clear_z
        return self.fire_level if clear is None else clear


class AnomalyCondition(_Strict):
    """The count in the window is ``k`` standard deviations above the baseline mean of same-sized windows."""

    baseline: Duration
    k: float = Field(gt=0)
    clear_k: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _clear(self) -> Self:
        _clear_within("k", self.k, self.clear_k)
        return self

    @property
    def clear_level(self) -> float:
        return self.k if self.clear_k is None else self.clear_k


class DivergenceCondition(_Strict):
    """Two viewpoints' values of the signal differ by ``delta`` or more; clear when the gap narrows below
    ``clear_delta``."""

    between: tuple[Viewpoint, Viewpoint]
    delta: float = Field(gt=0)
    clear_delta: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _two_sides(self) -> Self:
        first, second = self.between
        if first == second:
            raise ValueError(f"'between' names two different viewpoints, not {first!r} twice")
        _clear_within("delta", self.delta, self.clear_delta)
        return self

    @property
    def clear_level(self) -> float:
        return self.delta if self.clear_delta is None else self.clear_delta


class BurstCondition(_Strict):
    """At least ``stories`` distinct stories from ``outlets`` outlets past a stance level, in the window."""

    stories: int = Field(default=3, ge=1)
    outlets: int = Field(default=2, ge=1)
    stance_below: float | None = Field(default=None, ge=-1.0, le=1.0)
    stance_above: float | None = Field(default=None, ge=-1.0, le=1.0)
    clear_stories: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one_level(self) -> Self:
        if (self.stance_below is None) == (self.stance_above is None):
            raise ValueError("exactly one of 'stance_below' (strain) or 'stance_above' (cooperation)")
        _clear_within("stories", self.stories, self.clear_stories)
        return self

    @property
    def direction(self) -> Literal["up", "down"]:
        return "down" if self.stance_below is not None else "up"

    def qualifies(self, stance: float) -> bool:
        """Whether an article with this stance counts towards the burst."""
        if self.stance_below is not None:
            return stance < self.stance_below
        assert self.stance_above is not None
        return stance > self.stance_above

    @property
    def clear_level(self) -> int:
        return self.stories if self.clear_stories is None else self.clear_stories


class RuleConfig(_Strict):
    """One alert rule (see the module docstring for the YAML form)."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True, populate_by_name=True)

    name: str
    severity: Severity = "warning"
    subject: str
    signal: SignalName
    window: Duration
    description: str | None = None
    threshold: ThresholdCondition | None = None
    change: ChangeCondition | None = None
    anomaly: AnomalyCondition | None = None
    divergence: DivergenceCondition | None = None
    burst: BurstCondition | None = None
    min_stories: int = Field(default=1, ge=0)
    for_: Duration = Field(default=timedelta(0), alias="for")
    keep_firing_for: Duration = Field(default=timedelta(0))
    renotify: Duration | None = None

    @model_validator(mode="wrap")
    @classmethod
    def _name_the_rule(cls, data: Any, handler: ModelWrapValidatorHandler[RuleConfig]) -> RuleConfig:
        """Prefix every error with the rule's name, keeping the field's location."""
        try:
            return handler(data)
        except ValidationError as exc:
            name = data.get("name") if isinstance(data, dict) else None
            if not isinstance(name, str) or not name:
                raise
            errors = [
                InitErrorDetails(
                    type=PydanticCustomError(
                        "rule_invalid", "rule '{rule}': {detail}", {"rule": name, "detail": _detail(e)}
                    ),
                    loc=e["loc"],
                    input=e.get("input"),
                )
                for e in exc.errors()
            ]
            raise ValidationError.from_exception_data(exc.title, errors) from None

    @field_validator("name")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("a lowercase slug of letters, digits, '-' or '_' (at most 64)")
        return value

    @field_validator("subject")
    @classmethod
    def _known_subject(cls, value: str) -> str:
        if value not in SUBJECTS:
            raise ValueError(f"one of the topics {list(TOPICS)} or {OVERALL!r}; unknown topic {value!r}")
        return value

    @field_validator("window")
    @classmethod
    def _positive_window(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError(f"a positive window, not {format_duration(value)}")
        return value

    @field_validator("threshold")
    @classmethod
    def _levels_in_range(
        cls, value: ThresholdCondition | None, info: ValidationInfo
    ) -> ThresholdCondition | None:
        signal = info.data.get("signal")
        if value is not None and signal is not None:
            for what in ("above", "below", "clear_below", "clear_above"):
                _check_level(getattr(value, what), signal, what)
        return value

    @field_validator("change")
    @classmethod
    def _change_fits(cls, value: ChangeCondition | None, info: ValidationInfo) -> ChangeCondition | None:
        if value is None:
            return value
        window, signal = info.data.get("window"), info.data.get("signal")
        if window is not None and value.baseline <= window:
            raise ValueError(
                f"baseline {format_duration(value.baseline)} must be longer than the rule's window "
                f"{format_duration(window)}"
            )
        if value.z is not None and signal in ("volume", "stories"):
            raise ValueError(f"'z' needs a spread of values: use 'delta' for {signal}, or an 'anomaly' rule")
        if value.delta is not None and signal is not None:
            low, high = SIGNAL_RANGE[signal]
            if value.delta > high - low:
                raise ValueError(f"delta {value.delta} is larger than the whole range of {signal}")
        return value

    @field_validator("anomaly")
    @classmethod
    def _anomaly_fits(cls, value: AnomalyCondition | None, info: ValidationInfo) -> AnomalyCondition | None:
        if value is None:
            return value
        window, signal = info.data.get("window"), info.data.get("signal")
        if signal is not None and signal not in ("stories", "volume"):
            raise ValueError(f"an anomaly rule counts 'stories' or 'volume', not {signal}")
        if window is not None and value.baseline < 2 * window:
            raise ValueError(
                f"baseline {format_duration(value.baseline)} must hold at least two windows of "
                f"{format_duration(window)}"
            )
        return value

    @field_validator("divergence")
    @classmethod
    def _divergence_fits(
        cls, value: DivergenceCondition | None, info: ValidationInfo
    ) -> DivergenceCondition | None:
        if value is None:
            return value
        signal = info.data.get("signal")
        if signal is not None and signal not in ("stance_index", "strained_share"):
            raise ValueError(f"a divergence rule compares 'stance_index' or 'strained_share', not {signal}")
        if signal is not None:
            low, high = SIGNAL_RANGE[signal]
            if value.delta > high - low:
                raise ValueError(f"delta {value.delta} is larger than the whole range of {signal}")
        return value

    @field_validator("burst")
    @classmethod
    def _burst_fits(cls, value: BurstCondition | None, info: ValidationInfo) -> BurstCondition | None:
        signal = info.data.get("signal")
        if value is not None and signal is not None and signal != "stories":
            raise ValueError(f"a burst rule counts distinct stories: use 'signal: stories', not {signal}")
        return value

    @field_validator("for_", "keep_firing_for")
    @classmethod
    def _not_negative(cls, value: timedelta) -> timedelta:
        if value < timedelta(0):
            raise ValueError(f"a duration of zero or more, not {format_duration(value)}")
        return value

    @field_validator("renotify")
    @classmethod
    def _positive_renotify(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value <= timedelta(0):
            raise ValueError(f"a positive interval, not {format_duration(value)}")
        return value

    @model_validator(mode="after")
    def _one_condition(self) -> Self:
        given = [
            k
            for k in ("threshold", "change", "anomaly", "burst", "divergence")
            if getattr(self, k) is not None
        ]
        if len(given) != 1:
            raise ValueError(
                f"rule '{self.name}': exactly one condition: 'threshold', 'change', 'anomaly', 'burst' or "
                "'divergence'" + (f" (got {', '.join(given)})" if given else "")
            )
        if self.burst is not None and self.for_ > timedelta(0):
            raise ValueError(
                f"rule '{self.name}': a burst rule fires as its articles arrive: 'for' must be 0, not "
                f"{format_duration(self.for_)} (use 'keep_firing_for' against flapping)"
            )
        return self

    @property
    def kind(self) -> Literal["threshold", "change", "anomaly", "burst", "divergence"]:
        if self.threshold is not None:
            return "threshold"
        if self.divergence is not None:
            return "divergence"
        if self.change is not None:
            return "change"
        return "anomaly" if self.anomaly is not None else "burst"

    @property
    def baseline_window(self) -> timedelta | None:
        condition = self.change or self.anomaly
        return condition.baseline if condition is not None else None

    @property
    def span(self) -> timedelta:
        """How far back in event time the rule looks: its window plus any baseline."""
        if self.anomaly is not None:
            return self.window + self.anomaly.baseline
        if self.change is not None:
            return max(self.window, self.change.baseline)
        return self.window


def _detail(error: Any) -> str:
    kind = error["type"]
    if kind == "missing":
        return "this key is required"
    if kind == "extra_forbidden":
        return "no such key"
    if kind == "rule_invalid":
        return str(error["ctx"]["detail"])
    return str(error["msg"]).removeprefix("Value error, ")
