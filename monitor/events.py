"""The event contracts (DESIGN §4): frozen, past-tense event types with symmetric JSON encode/decode.

Every record on the bus is one JSON object, UTF-8, with ``schema_version`` and ``type``. Times are RFC 3339
in UTC. Decoding anything that is not a valid event raises :class:`~monitor.errors.DecodeError` with the
reason, so the stage can dead-letter it and move on. Fields may be added, never renamed or removed.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import PydanticCustomError

from monitor.errors import DecodeError

SCHEMA_VERSION = 1

TOPICS: tuple[str, ...] = (
    "trade_tariffs",
    "critical_minerals",
    "energy_nuclear",
    "defence",
    "technology",
    "indo_pacific_quad",
    "diplomacy_other",
)
"""The fixed topic labels (DESIGN §3, contract)."""

OVERALL = "overall"
"""The subject of signals and alerts computed over all topics."""

StanceLabel = Literal["strain", "cooperation", "neutral"]
STANCE_LABELS: tuple[StanceLabel, ...] = ("strain", "cooperation", "neutral")

Severity = Literal["info", "warning", "critical"]

Viewpoint = Literal["india", "us", "international"]
"""Where an outlet reads the relationship from (a feed's ``viewpoint`` in ``monitor.yaml``)."""
VIEWPOINTS: tuple[Viewpoint, ...] = ("india", "us", "international")
DEFAULT_VIEWPOINT: Viewpoint = "international"
"""The viewpoint of a feed that declares none, and of records written before the field existed: an
outlet not known to be Indian or American takes neither side of a divergence."""
ALL_VIEWPOINTS: Literal["all"] = "all"
"""The viewpoint of a signal computed over every outlet (the signals as they were before the split)."""
SignalViewpoint = Literal["india", "us", "international", "all"]


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def format_time(value: datetime) -> str:
    """RFC 3339 in UTC with a ``Z`` suffix, the one time format on the wire."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


UtcDatetime = Annotated[
    AwareDatetime,
    AfterValidator(_to_utc),
    PlainSerializer(format_time, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


def _json_text(value: Any) -> str:
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def _number_only(value: Any) -> Any:
    # JSON's true/false and numeric strings are not numbers (Python's bool is an int, pydantic's lax mode
    # reads "0.5"): a record that says ``"relevance": true`` is wrong, not 1.0.
    if isinstance(value, bool | str | bytes | bytearray):
        raise PydanticCustomError("number_type", "must be a number, got {got}", {"got": _json_text(value)})
    return value


def _integer_only(value: Any) -> Any:
    if isinstance(value, bool | str | bytes | bytearray | float):
        raise PydanticCustomError("int_type", "must be an integer, got {got}", {"got": _json_text(value)})
    return value


Number = Annotated[float, BeforeValidator(_number_only)]
"""A JSON number (integer or not); booleans and strings are rejected."""
Integer = Annotated[int, BeforeValidator(_integer_only)]
"""A JSON integer; booleans, strings and numbers with a fraction part or a decimal point are rejected."""
Probability = Annotated[float, Field(ge=0.0, le=1.0), BeforeValidator(_number_only)]


class Event(BaseModel):
    """Base of all events: frozen, unknown fields ignored (newer producers may add fields)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    schema_version: Annotated[Literal[1], BeforeValidator(_integer_only)] = 1
    type: str = ""

    event_type: ClassVar[str] = ""

    def model_post_init(self, context: Any, /) -> None:
        # The wire name of the type is always the class's, whatever the input said.
        object.__setattr__(self, "type", self.event_type)

    def encode(self) -> bytes:
        """The record value: compact JSON, UTF-8."""
        return self.model_dump_json().encode("utf-8")

    def to_json_dict(self) -> dict[str, Any]:
        """The JSON object as a dict (what :meth:`encode` writes)."""
        result: dict[str, Any] = json.loads(self.model_dump_json())
        return result


class Source(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    feed_id: str
    name: str
    url: str
    viewpoint: Viewpoint = DEFAULT_VIEWPOINT
    """The feed's declared viewpoint; records written before the field existed read as the default."""


class _ArticleFields(Event):
    article_id: str = Field(min_length=1)
    story_id: str = Field(min_length=1)
    url: str
    title: str
    summary: str
    published_at: UtcDatetime
    fetched_at: UtcDatetime
    language: str | None
    source: Source
    relevance_hint: Probability


class ArticleFetched(_ArticleFields):
    """A new article the poller saw in a feed (topic ``news.articles``, key ``article_id``)."""

    event_type: ClassVar[str] = "ArticleFetched"


class Stance(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    score: Annotated[float, Field(ge=-1.0, le=1.0), BeforeValidator(_number_only)]
    label: StanceLabel
    probabilities: dict[StanceLabel, Probability]


class ModelInfo(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    name: str
    version: str


class ArticleScored(_ArticleFields):
    """An article with the classifier's judgement (topic ``news.scored``, key ``article_id``)."""

    event_type: ClassVar[str] = "ArticleScored"

    relevance: Probability
    topics: dict[str, Probability]
    stance: Stance
    model: ModelInfo
    evidence: list[str]
    scored_at: UtcDatetime | None = None
    rescored_at: UtcDatetime | None = None
    """Set by ``monitor rescore``: when this judgement was made. ``scored_at`` then stays the time the
    article first reached the scored topic, the arrival time a replaying alerter counts it at."""

    @field_validator("topics")
    @classmethod
    def _known_topics(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(TOPICS))
        if unknown:
            raise ValueError(f"unknown topic labels {unknown}; known: {list(TOPICS)}")
        return value

    @classmethod
    def from_article(cls, article: ArticleFetched, **scores: Any) -> ArticleScored:
        fields = article.model_dump(exclude={"type", "schema_version"})
        return cls(**fields, **scores)


class SignalUpdated(Event):
    """One point of a signal's time series (topic ``news.signals``, key = signal name)."""

    event_type: ClassVar[str] = "SignalUpdated"

    signal: str
    topic: str
    window: str
    value: Number | None
    articles: Integer = Field(ge=0)
    stories: Integer = Field(ge=0)
    at: UtcDatetime
    viewpoint: SignalViewpoint = ALL_VIEWPOINTS
    """Whose outlets the point counts: one viewpoint, or ``all`` (every outlet; also records written
    before the split)."""

    @property
    def key(self) -> str:
        """``signal/topic/window``, with ``/viewpoint`` appended for a single viewpoint (the keys of the
        ``all`` points are those written before the split, so the compacted topic keeps them)."""
        base = f"{self.signal}/{self.topic}/{self.window}"
        return base if self.viewpoint == ALL_VIEWPOINTS else f"{base}/{self.viewpoint}"


class AlertEvidence(BaseModel):
    """One story behind an alert: its most relevant copy, and how many outlets carried the story."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    article_id: str
    title: str
    url: str
    stance: Number
    evidence: str | None = None
    story_id: str = ""
    """The story (near-duplicate cluster) this article represents; empty in records written before."""
    outlets: Integer = Field(default=0, ge=0)
    """How many outlets (distinct sources) carried the story in the rule's window; 0: not recorded."""
    viewpoint: Viewpoint = DEFAULT_VIEWPOINT
    """The viewpoint of the feed the article came from (the default in records written before)."""


class _AlertFields(Event):
    alert_id: str
    rule: str
    severity: Severity
    state: str
    subject: str
    signal: str = ""
    value: Number | None
    threshold: Number | None
    baseline: Number | None
    window: str
    started_at: UtcDatetime
    at: UtcDatetime
    evidence: list[AlertEvidence]
    summary: str
    end_of_input: bool = False
    """True when the end of input (``monitor run --once``) decided this event: the rule's ``for`` was
    counted as quiet time after the last article instead of being waited out, and ``at`` is when the run
    ended, not a later time that had not happened."""
    dedup_key: str = ""
    """A stable key of the episode (PagerDuty-style): the same on every event of one episode (firing,
    re-notifications, resolved), on every alert topic, at the webhook and in Alertmanager; it is the
    ``alert_id`` (filled in when a record written before the field existed is read)."""

    def model_post_init(self, context: Any, /) -> None:
        super().model_post_init(context)
        if not self.dedup_key:
            object.__setattr__(self, "dedup_key", self.alert_id)

    backfill: bool = False
    """True for an event a first start computed over the past (the feeds' back catalogue folded in at
    its event times): published for the record, never notified."""

    @property
    def key(self) -> str:
        return f"{self.rule}/{self.subject}"


class AlertFiring(_AlertFields):
    """A rule's condition held long enough: an alert episode is firing (topic ``news.alerts``)."""

    event_type: ClassVar[str] = "AlertFiring"

    state: Literal["firing"] = "firing"


class AlertResolved(_AlertFields):
    """A firing alert's condition cleared (topic ``news.alerts``); same ``alert_id`` as its firing."""

    event_type: ClassVar[str] = "AlertResolved"

    state: Literal["resolved"] = "resolved"


class DeadLetter(Event):
    """A record a stage could not decode or process (topic ``news.deadletter``).

    ``value_base64`` is the original value, or, when the whole of it would not fit in one record
    (``value_truncated``), its first bytes; ``value_size`` and ``value_sha256`` (hex) are always those of the
    whole original. Letters written before these fields existed read as complete copies (size and digest
    computed from ``value_base64``).
    """

    event_type: ClassVar[str] = "DeadLetter"

    stage: str
    reason: str
    topic: str
    partition: Integer
    offset: Integer
    key: str | None
    value_base64: str
    at: UtcDatetime
    value_size: Annotated[Integer, WithJsonSchema({"type": "integer", "minimum": 0})] = Field(
        default=-1, ge=-1
    )
    value_sha256: Annotated[str, WithJsonSchema({"type": "string", "pattern": "^[0-9a-f]{64}$"})] = ""
    value_truncated: Annotated[bool, Field(strict=True)] = False

    def model_post_init(self, context: Any, /) -> None:
        super().model_post_init(context)
        if self.value_size < 0 or not self.value_sha256:
            original = self.original_value
            if self.value_size < 0:
                object.__setattr__(self, "value_size", len(original))
            if not self.value_sha256:
                object.__setattr__(self, "value_sha256", hashlib.sha256(original).hexdigest())

    @property
    def original_value(self) -> bytes:
        """The bytes kept: the whole original value, or its first bytes if ``value_truncated``."""
        return base64.b64decode(self.value_base64)


E = TypeVar("E", bound=Event)

EVENT_TYPES: tuple[type[Event], ...] = (
    ArticleFetched,
    ArticleScored,
    SignalUpdated,
    AlertFiring,
    AlertResolved,
    DeadLetter,
)
_BY_NAME: dict[str, type[Event]] = {cls.event_type: cls for cls in EVENT_TYPES}


def _load_object(data: bytes | str) -> dict[str, Any]:
    try:
        text = data.decode("utf-8") if isinstance(data, bytes | bytearray) else data
    except UnicodeDecodeError as exc:
        raise DecodeError(f"not UTF-8: {exc}") from exc
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DecodeError(f"not valid JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise DecodeError(f"not a JSON object but {type(obj).__name__}")
    if "schema_version" not in obj:
        raise DecodeError("missing field 'schema_version'")
    version = obj["schema_version"]
    if isinstance(version, bool) or not isinstance(version, int):
        raise DecodeError(f"schema_version must be an integer, got {_json_text(version)}")
    if version != SCHEMA_VERSION:
        raise DecodeError(
            f"unsupported schema_version {obj['schema_version']!r} (this build reads {SCHEMA_VERSION})"
        )
    return obj


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        loc = ".".join(str(p) for p in error["loc"]) or "<record>"
        if error["type"] == "missing":
            parts.append(f"missing field '{loc}'")
        else:
            parts.append(f"field '{loc}': {error['msg']}")
    return "; ".join(parts)


def decode(cls: type[E], data: bytes | str) -> E:
    """Decode a record value into ``cls``; raise :class:`DecodeError` with the reason if it is not one."""
    obj = _load_object(data)
    declared = obj.get("type")
    if declared not in (None, "", cls.event_type):
        raise DecodeError(f"record of type {declared!r} where {cls.event_type!r} was expected")
    try:
        return cls.model_validate(obj)
    except ValidationError as exc:
        raise DecodeError(f"invalid {cls.event_type}: {_describe(exc)}") from exc


def decode_any(data: bytes | str, *, allowed: tuple[type[Event], ...] = EVENT_TYPES) -> Event:
    """Decode a record whose type is named by its ``type`` field, among ``allowed``."""
    obj = _load_object(data)
    name = obj.get("type")
    cls = _BY_NAME.get(name) if isinstance(name, str) else None
    if cls is None or cls not in allowed:
        raise DecodeError(f"record type {name!r} is not one of {[c.event_type for c in allowed]}")
    try:
        return cls.model_validate(obj)
    except ValidationError as exc:
        raise DecodeError(f"invalid {cls.event_type}: {_describe(exc)}") from exc


def decode_alert(data: bytes | str) -> AlertFiring | AlertResolved:
    """Decode a record of the alert topic (either lifecycle event)."""
    event = decode_any(data, allowed=(AlertFiring, AlertResolved))
    assert isinstance(event, AlertFiring | AlertResolved)
    return event


def json_schema(cls: type[Event]) -> dict[str, Any]:
    """The JSON Schema of a record of ``cls``, as shipped in ``monitor/schemas/``."""
    schema = cls.model_json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://india-us-monitor.example/schemas/{cls.event_type}.json"
    schema["title"] = cls.event_type
    schema["description"] = (cls.__doc__ or "").strip().splitlines()[0]
    props = schema["properties"]
    props["schema_version"] = {"const": SCHEMA_VERSION, "type": "integer"}
    props["type"] = {"const": cls.event_type, "type": "string"}
    # Producers always write every field; optional ones as null.
    schema["required"] = sorted(props)
    return schema
