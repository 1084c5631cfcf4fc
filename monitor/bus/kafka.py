"""Kafka adapter on kafka-python (>= 3): idempotent producer, group consumers with manual commits.

kafka-python's exceptions never leave this module: they become :class:`~monitor.errors.BusError`, with
``retriable`` taken from the Kafka error. When a client cannot reach the cluster at all, kafka-python says
only "Unable to bootstrap" (the cause goes to its log); the error then tells what one probe connection to
the first bootstrap server found: refused, a certificate not trusted or not for that host, a client
certificate wanted, or TLS fine but the SASL login not done.
"""

from __future__ import annotations

import logging
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.coordinator.assignors.cooperative_sticky import CooperativeStickyAssignor
from kafka.errors import KafkaError, KafkaTimeoutError, RetriableError, TopicAlreadyExistsError
from kafka.net.compat import KafkaNetClient
from kafka.structs import OffsetAndMetadata

from monitor.bus.base import (
    DEFAULT_MAX_MESSAGE_BYTES,
    Bus,
    Consumer,
    Lease,
    Message,
    Producer,
    Record,
    TopicSpec,
    first_offsets,
)
from monitor.errors import BusError
from monitor.settings import KafkaSettings, kafka_env_var

log = logging.getLogger(__name__)


@contextmanager
def _translated(action: str) -> Iterator[None]:
    try:
        yield
    except KafkaError as exc:
        # kafka-python marks what may succeed if tried again (timeouts, connections, leadership moves).
        retriable = isinstance(exc, RetriableError) or bool(getattr(exc, "retriable", False))
        text = str(exc)  # most kafka-python errors name their class already
        detail = text if text.startswith(type(exc).__name__) else f"{type(exc).__name__}: {text}"
        raise BusError(f"{action}: {detail}", retriable=retriable) from exc


@dataclass(frozen=True)
class _Finding:
    """What a probe connection found: ``reason`` for the error message; ``settled``: a TLS problem that
    trying again will not cure (the error is then not retriable)."""

    reason: str
    settled: bool


def _host_port(server: str) -> tuple[str, int]:
    """Host and port of a bootstrap server entry: ``host:port``, ``[v6]:port``, or a host alone (9092)."""
    server = server.strip()
    host, colon, port = server.rpartition(":")
    if not colon or server.endswith("]") or (":" in host and not host.startswith("[")):
        return server.strip("[]"), 9092
    return host.strip("[]"), int(port) if port.isdigit() else 9092


def _ssl_context(settings: KafkaSettings) -> ssl.SSLContext:
    """The TLS context kafka-python builds from the same settings (``KafkaSSLTransport``)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = settings.ssl_check_hostname
    if settings.ssl_cafile is not None:
        context.load_verify_locations(cafile=str(settings.ssl_cafile))
    else:
        context.load_default_certs()
    if settings.ssl_certfile is not None:
        # No password: an empty one, so that a key encrypted after all fails instead of prompting.
        password = settings.ssl_password.get_secret_value() if settings.ssl_password is not None else ""
        context.load_cert_chain(str(settings.ssl_certfile), str(settings.ssl_keyfile), lambda: password)
    return context


def _api_versions_request(client_id: str) -> bytes:
    """An ApiVersions v0 request (every broker answers it, before any SASL login too)."""
    name = client_id.encode("utf-8")[:200]
    body = struct.pack(">hhih", 18, 0, 1, len(name)) + name
    return struct.pack(">i", len(body)) + body


def _probe(settings: KafkaSettings) -> _Finding | None:
    """Why clients cannot bootstrap, as far as one connection to the first bootstrap server tells."""
    host, port = _host_port(str(settings.bootstrap_servers).split(",")[0])
    where = f"{host}:{port}"
    timeout = min(10.0, settings.request_timeout.total_seconds())
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        return _Finding(f"cannot connect to {where}: {exc.strerror or exc}", settled=False)
    with sock:
        if settings.security_protocol in ("SSL", "SASL_SSL"):
            try:
                with _ssl_context(settings).wrap_socket(sock, server_hostname=host) as tls:
                    # In TLS 1.3 a broker that wants a client certificate says so after the handshake:
                    # ask it something to hear it.
                    tls.sendall(_api_versions_request(settings.client_id))
                    if not tls.recv(4):
                        return _Finding(f"{where} closed the TLS connection at once", settled=False)
            except ssl.SSLCertVerificationError as exc:
                if exc.verify_code in (62, 64):  # X509_V_ERR_HOSTNAME_MISMATCH, _IP_ADDRESS_MISMATCH
                    hint = (
                        f"the certificate is not for {host}; {kafka_env_var('ssl_check_hostname')}=false"
                        " accepts it all the same"
                    )
                elif settings.ssl_cafile is not None:
                    hint = f"is {kafka_env_var('ssl_cafile')} the CA that signed it?"
                else:
                    hint = f"{kafka_env_var('ssl_cafile')} is unset: checked against the system's CAs"
                message = str(exc.verify_message).rstrip(".")
                return _Finding(
                    f"TLS: the certificate of {where} was refused: {message} ({hint})", settled=True
                )
            except ssl.SSLError as exc:
                reason = str(exc.reason or exc).lower().replace("_", " ")
                if settings.ssl_certfile is None and (
                    "certificate" in reason or "handshake failure" in reason
                ):
                    reason += f" (does the broker want a client certificate? {kafka_env_var('ssl_certfile')})"
                elif "eof" in reason or "wrong version number" in reason:
                    reason += " (is this port a TLS listener?)"
                return _Finding(f"TLS with {where} failed: {reason}", settled=True)
            except OSError as exc:
                return _Finding(f"TLS with {where} failed: {exc.strerror or exc}", settled=False)
        if settings.sasl_mechanism is not None:
            return _Finding(
                f"{where} answers, but the SASL login ({settings.sasl_mechanism} as"
                f" {settings.sasl_username!r}) was refused or did not finish; check"
                f" {kafka_env_var('sasl_mechanism')}, _SASL_USERNAME and _SASL_PASSWORD",
                settled=False,
            )
    return None


class KafkaBus(Bus):
    """A bus over an Apache Kafka cluster.

    The record size limit of its producers is read from the cluster when the first producer starts: the
    smallest of the brokers' ``message.max.bytes`` and the configured topics' ``max.message.bytes``, capped
    by ``KafkaSettings.max_message_bytes``; if the configs cannot be read, kafka-python's default (1 MiB).
    """

    name = "kafka"

    def __init__(self, settings: KafkaSettings) -> None:
        if not settings.bootstrap_servers:
            raise BusError("no Kafka bootstrap servers configured")
        self._settings = settings
        request_timeout_ms = int(settings.request_timeout.total_seconds() * 1000)
        self._common: dict[str, Any] = {
            "bootstrap_servers": settings.bootstrap_servers.split(","),
            "client_id": settings.client_id,
            "security_protocol": settings.security_protocol,
            "request_timeout_ms": request_timeout_ms,
            # A client's constructor waits this long for a first broker, then fails (default 30 s).
            "bootstrap_timeout_ms": request_timeout_ms,
            "kafka_client": self._new_net_client,
        }
        if settings.sasl_mechanism:
            # kafka-python names the credentials sasl_plain_* for the SCRAM mechanisms too.
            self._common["sasl_mechanism"] = settings.sasl_mechanism
            self._common["sasl_plain_username"] = settings.sasl_username
            if settings.sasl_password is not None:
                self._common["sasl_plain_password"] = settings.sasl_password.get_secret_value()
        if settings.security_protocol in ("SSL", "SASL_SSL"):
            # File names, not a context: kafka-python reads them at each new connection (renewed files
            # are taken up without a restart).
            self._common["ssl_check_hostname"] = settings.ssl_check_hostname
            for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
                path = getattr(settings, name)
                if path is not None:
                    self._common[name] = str(path)
            if settings.ssl_password is not None:
                self._common["ssl_password"] = settings.ssl_password.get_secret_value()
        self._max_message_bytes: int | None = None
        self._made = threading.local()

    def _new_net_client(self, **configs: Any) -> KafkaNetClient:
        """kafka-python's network client, remembered by the :meth:`_connecting` block that made it.

        kafka-python 3 starts a client's IO thread before the first bootstrap; when that fails, the
        consumer's or admin client's constructor raises and nothing ever stops the thread (one idle thread
        per failed attempt, so a stage retrying against a broker that is down piled them up). The block
        closes the clients it made when it fails.
        """
        client = KafkaNetClient(**configs)
        made: list[KafkaNetClient] | None = getattr(self._made, "clients", None)
        if made is not None:
            made.append(client)
        return client

    @property
    def bootstrap(self) -> str:
        return str(self._settings.bootstrap_servers)

    @contextmanager
    def _connecting(self, action: str) -> Iterator[None]:
        """:func:`_translated` where clients are made: a failed bootstrap says why, if a probe can tell;
        the network clients made inside a block that fails are closed (see :meth:`_new_net_client`)."""
        outer = getattr(self._made, "clients", None)
        made: list[KafkaNetClient] = []
        self._made.clients = made
        try:
            with _translated(action):
                yield
        except BaseException as exc:
            for client in made:
                try:
                    client.close()
                except Exception as close_error:  # half made: nothing more to free
                    log.debug("closing a failed client: %s", close_error)
            if not isinstance(exc, BusError):
                raise
            cause = exc.__cause__
            bootstrap_failed = isinstance(cause, KafkaTimeoutError) and "bootstrap" in str(cause).lower()
            finding = _probe(self._settings) if bootstrap_failed else None
            if finding is None:
                raise
            raise BusError(
                f"{exc} ({finding.reason})", retriable=exc.retriable and not finding.settled
            ) from cause
        finally:
            self._made.clients = outer

    def producer(self) -> Producer:
        timeout = self._settings.delivery_timeout.total_seconds()
        limit = self.max_message_bytes()
        return _KafkaProducer(
            lambda: self._new_kafka_producer(limit), timeout=timeout, max_message_bytes=limit
        )

    def max_message_bytes(self) -> int:
        """The record size limit of this bus's producers (read once, see the class)."""
        if self._max_message_bytes is None:
            try:
                limit = self.read_size_limit()
            except BusError as exc:
                limit = DEFAULT_MAX_MESSAGE_BYTES
                log.warning("cannot read the broker's record size limit (%s); assuming %d bytes", exc, limit)
            cap = self._settings.max_message_bytes
            if cap is not None and cap < limit:
                log.info("record size limit %d bytes, capped by the settings to %d", limit, cap)
                limit = cap
            self._max_message_bytes = limit
        return self._max_message_bytes

    def read_size_limit(self) -> int:
        """The smallest of the brokers' ``message.max.bytes`` and the topics' ``max.message.bytes``.

        Topics are the configured ones that exist. Raises :class:`BusError` if the configs cannot be read.
        """
        topics = self._settings.topics
        names = sorted({topics.articles, topics.scored, topics.signals, topics.alerts, topics.deadletter})
        with self._connecting("describing configs"):
            admin = KafkaAdminClient(**self._common)
            try:
                brokers = [b["broker_id"] for b in admin.describe_cluster()["brokers"]]
                existing = set(admin.list_topics())
                resources = [
                    ConfigResource(ConfigResourceType.BROKER, str(b), configs={"message.max.bytes": None})
                    for b in brokers
                ] + [
                    ConfigResource(ConfigResourceType.TOPIC, t, configs={"max.message.bytes": None})
                    for t in names
                    if t in existing
                ]
                described = admin.describe_configs(resources, config_filter="all")
            finally:
                admin.close()
        values: dict[str, int] = {}
        for kind, key in (("broker", "message.max.bytes"), ("topic", "max.message.bytes")):
            for name, configs in described.get(kind, {}).items():
                entry = configs.get(key)
                if entry is not None and entry.get("value") is not None:
                    values[f"{kind} {name} {key}"] = int(entry["value"])
        if not any(k.startswith("broker ") for k in values):
            raise BusError(f"no broker answered with message.max.bytes ({sorted(described)})")
        limit = min(values.values())
        log.info(
            "record size limit %d bytes (%s)", limit, ", ".join(f"{k}={v}" for k, v in sorted(values.items()))
        )
        return limit

    def _new_kafka_producer(self, max_request_size: int) -> KafkaProducer:
        with self._connecting("connecting producer"):
            return KafkaProducer(
                **self._common,
                max_request_size=max_request_size,
                acks="all",
                enable_idempotence=True,
                retries=2**31 - 1,
                max_in_flight_requests_per_connection=5,
                linger_ms=5,
                delivery_timeout_ms=int(self._settings.delivery_timeout.total_seconds() * 1000),
            )

    def consumer(
        self,
        topics: Sequence[str],
        *,
        group_id: str | None,
        from_beginning: bool = True,
        member: bool = True,
    ) -> Consumer:
        with self._connecting("connecting consumer"):
            consumer = KafkaConsumer(
                **self._common,
                group_id=group_id,
                enable_auto_commit=False,
                auto_offset_reset="earliest" if from_beginning else "latest",
                session_timeout_ms=int(self._settings.session_timeout.total_seconds() * 1000),
                max_poll_interval_ms=int(self._settings.max_poll_interval.total_seconds() * 1000),
            )
            if group_id is not None and member:
                consumer.subscribe(list(topics))
            else:
                parts = [
                    TopicPartition(t, p)
                    for t in topics
                    for p in sorted(consumer.partitions_for_topic(t) or ())
                ]
                missing = [t for t in topics if not any(p.topic == t for p in parts)]
                if missing:
                    consumer.close()
                    raise BusError(f"no such topic: {', '.join(missing)}", retriable=True)
                consumer.assign(parts)
                if from_beginning:
                    consumer.seek_to_beginning(*parts)
                else:
                    consumer.seek_to_end(*parts)
        return _KafkaConsumer(consumer, grouped=group_id is not None)

    def lease(self, topic: str, group_id: str, *, timeout: float) -> Lease:
        """A consumer group on a one-partition ``topic``: the member assigned partition 0 holds the lease.

        ``timeout`` is the group's session timeout (the broker bounds it, by default 6 s to 30 min): a
        holder that stops heartbeating loses the lease that long after its last heartbeat.
        """
        session_ms = int(timeout * 1000)
        with self._connecting("joining the lease group"):
            consumer = KafkaConsumer(
                **self._common,
                group_id=group_id,
                enable_auto_commit=False,
                session_timeout_ms=session_ms,
                heartbeat_interval_ms=max(100, session_ms // 3),
                partition_assignment_strategy=[CooperativeStickyAssignor],
                max_poll_interval_ms=int(self._settings.max_poll_interval.total_seconds() * 1000),
            )
        lease = _KafkaLease(consumer, topic, timeout)
        try:
            with _translated("joining the lease group"):
                consumer.subscribe([topic], listener=lease)
        except BusError:
            consumer.close(autocommit=False)
            raise
        lease.start()
        return lease

    def create_topics(self, specs: Sequence[TopicSpec]) -> list[str]:
        with self._connecting("creating topics"):
            admin = KafkaAdminClient(**self._common)
            try:
                existing = set(admin.list_topics())
                created = []
                for spec in specs:
                    if spec.name in existing:
                        continue
                    try:
                        admin.create_topics(
                            [
                                NewTopic(
                                    name=spec.name,
                                    num_partitions=spec.partitions,
                                    replication_factor=spec.replication_factor,
                                    topic_configs=dict(spec.config),
                                )
                            ]
                        )
                        created.append(spec.name)
                    except TopicAlreadyExistsError:  # created meanwhile by someone else: fine
                        pass
                return created
            finally:
                admin.close()

    def topic_partitions(self, topic: str) -> int:
        """Number of partitions of ``topic`` (0 if it does not exist)."""
        with self._connecting("describing topic"):
            consumer = KafkaConsumer(**self._common)
            try:
                return len(consumer.partitions_for_topic(topic) or ())
            finally:
                consumer.close()


class _KafkaProducer(Producer):
    """Publish and wait for the acks, with a bounded wait: ``delivery_timeout`` plus a margin.

    kafka-python's producer retries by itself within ``delivery_timeout``; a batch still unanswered well
    after that means the client is stuck (its sender thread died, or it holds a connection to a broker
    incarnation that is gone). Then the client is dropped and the next publish starts a fresh one, so a
    caller that retries (every stage does) recovers as soon as the broker is back, however long it took.
    Messages of a failed publish may or may not have been written: at-least-once, as everywhere.
    """

    _MARGIN = 5.0

    def __init__(
        self, factory: Callable[[], KafkaProducer], *, timeout: float, max_message_bytes: int
    ) -> None:
        self._factory = factory
        self._timeout = timeout + self._MARGIN
        self._max_message_bytes = max_message_bytes
        self._producer: KafkaProducer | None = factory()

    @property
    def max_message_bytes(self) -> int:
        return self._max_message_bytes

    def _client(self) -> KafkaProducer:
        if self._producer is None:
            self._producer = self._factory()
            log.info("Kafka producer reconnected")
        return self._producer

    def _discard(self, why: str) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            log.warning("Kafka producer stuck (%s): closing it; the next publish uses a new one", why)
            _abandon(producer)

    def publish_all(self, messages: Sequence[Message]) -> None:
        if not messages:
            return
        producer = self._client()
        sender = getattr(producer, "_sender", None)
        if sender is not None and not sender.is_alive():
            self._discard("its sender thread has stopped")
            producer = self._client()
        with _translated("publishing"):
            futures = [
                producer.send(
                    m.topic, key=m.key.encode("utf-8") if m.key is not None else None, value=m.value
                )
                for m in messages
            ]
            try:
                producer.flush(timeout=self._timeout)
            except KafkaTimeoutError:  # batches neither acked nor expired by the client itself: stuck
                self._discard(f"batches unanswered after {self._timeout:.0f}s")
                raise
            for future in futures:
                future.get(timeout=self._timeout)

    def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with _translated("closing producer"):
                producer.close(timeout=10)


def _abandon(producer: KafkaProducer) -> None:
    """Close a stuck producer at once, failing what it still holds.

    ``close(timeout=0)`` alone does not do it: it first flushes, which raises while batches are unanswered.
    kafka-python's own force-close path (the one ``close`` takes after a timed-out join) fails the pending
    batches in the sender thread; when that thread has died, the batches are failed here.
    """
    sender = getattr(producer, "_sender", None)
    if sender is not None and sender.is_alive():
        sender.force_close()
        sender.join(5.0)
    accumulator = getattr(producer, "_accumulator", None)
    if accumulator is not None and (sender is None or not sender.is_alive()):
        accumulator.abort_incomplete_batches()
    try:
        producer.close(timeout=0)
    except KafkaError as exc:
        log.debug("closing a stuck producer: %s", exc)


class _KafkaLease(Lease, ConsumerRebalanceListener):  # type: ignore[misc]  # kafka-python is untyped
    """Held while this member is assigned partition 0 of the lease topic (no record is ever read).

    A thread of its own polls the group (kafka-python completes joins and rebalances inside poll, and a
    poll too short to finish a join starts it over), so the stage's loop only reads a flag. If the loop
    stops asking (:meth:`held` not called for ``timeout``), the thread leaves the group: a stuck process
    gives the lease up instead of keeping it without doing the work.
    """

    def __init__(self, consumer: KafkaConsumer, topic: str, timeout: float) -> None:
        self._consumer = consumer
        self._topic = topic
        self._timeout = timeout
        self._held = False
        self._asked = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{topic}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        backoff = 0.5
        try:
            while not self._stop.is_set():
                if time.monotonic() - self._asked > self._timeout:
                    log.error("the stage stopped asking for its lease for %.0fs: giving it up", self._timeout)
                    break
                try:
                    self._consumer.poll(timeout_ms=500)
                    backoff = 0.5
                except KafkaError as exc:
                    self._held = False
                    log.warning("lease group: %s: %s (retrying in %.1fs)", type(exc).__name__, exc, backoff)
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, 5.0)
        finally:
            self._held = False
            try:
                self._consumer.close(autocommit=False)
            except KafkaError as exc:
                log.warning("leaving the lease group: %s", exc)

    def held(self) -> bool:
        self._asked = time.monotonic()
        return self._held and self._thread.is_alive()

    # Cooperative rebalancing: these name only the partitions that move, so a new standby joining leaves
    # the holder holding (an eager protocol would revoke and reassign it, maybe to the newcomer).
    def on_partitions_revoked(self, revoked: Any) -> None:
        if TopicPartition(self._topic, 0) in set(revoked):
            self._held = False

    def on_partitions_lost(self, lost: Any) -> None:
        if TopicPartition(self._topic, 0) in set(lost):
            self._held = False

    def on_partitions_assigned(self, assigned: Any) -> None:
        if TopicPartition(self._topic, 0) in set(assigned):
            self._held = True

    def close(self) -> None:
        self._held = False
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        elif not self._thread.ident:  # never started
            self._consumer.close(autocommit=False)


class _KafkaConsumer(Consumer):
    def __init__(self, consumer: KafkaConsumer, *, grouped: bool) -> None:
        self._consumer = consumer
        self._grouped = grouped

    def poll(self, *, max_records: int = 500, timeout: float = 1.0) -> list[Record]:
        with _translated("polling"):
            batches = self._consumer.poll(timeout_ms=int(timeout * 1000), max_records=max_records)
        out = []
        for tp in sorted(batches, key=lambda tp: (tp.topic, tp.partition)):
            for m in batches[tp]:
                key = m.key.decode("utf-8", "replace") if m.key is not None else None
                out.append(Record(m.topic, m.partition, m.offset, key, m.value or b"", m.timestamp))
        return out

    def commit(self, records: Sequence[Record]) -> None:
        if not self._grouped or not records:
            return
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        for r in records:
            tp = TopicPartition(r.topic, r.partition)
            if tp not in offsets or offsets[tp].offset < r.offset + 1:
                offsets[tp] = OffsetAndMetadata(r.offset + 1, "", -1)
        with _translated("committing offsets"):
            self._consumer.commit(offsets)

    def rewind(self, records: Sequence[Record]) -> None:
        with _translated("seeking"):
            assigned = self._consumer.assignment()
            for (topic, partition), offset in first_offsets(records).items():
                tp = TopicPartition(topic, partition)
                if tp in assigned:
                    self._consumer.seek(tp, offset)

    def seek(self, positions: Mapping[tuple[str, int], int]) -> None:
        with _translated("seeking"):
            rest = []
            for tp in self._consumer.assignment():
                offset = positions.get((tp.topic, tp.partition))
                if offset is None:
                    rest.append(tp)
                else:
                    self._consumer.seek(tp, offset)
            if rest:
                self._consumer.seek_to_beginning(*rest)

    def committed(self) -> dict[tuple[str, int], int]:
        if not self._grouped:
            raise BusError("committed offsets: the consumer has no group")
        out = {}
        with _translated("reading committed offsets"):
            for tp in self._consumer.assignment():
                offset = self._consumer.committed(tp)
                if offset is not None:
                    out[(tp.topic, tp.partition)] = int(offset)
        return out

    def assignment(self) -> set[tuple[str, int]]:
        return {(tp.topic, tp.partition) for tp in self._consumer.assignment()}

    def lag(self) -> dict[tuple[str, int], int]:
        with _translated("reading end offsets"):
            assigned = list(self._consumer.assignment())
            if not assigned:
                return {}
            ends = self._consumer.end_offsets(assigned)
            return {
                (tp.topic, tp.partition): max(0, ends[tp] - self._consumer.position(tp)) for tp in assigned
            }

    def end_offsets(self) -> dict[tuple[str, int], int]:
        with _translated("reading end offsets"):
            assigned = list(self._consumer.assignment())
            if not assigned:
                return {}
            ends = self._consumer.end_offsets(assigned)
            return {(tp.topic, tp.partition): int(ends[tp]) for tp in assigned}

    def close(self) -> None:
        with _translated("closing consumer"):
            self._consumer.close(autocommit=False)
