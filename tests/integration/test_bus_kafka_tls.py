"""The Kafka adapter over TLS, against a real broker: SASL_SSL with SCRAM, client certificates, the
hostname check; and each way of getting it wrong, which must fail fast with an error saying why."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from bus_contract import drain
from harness.kafka import KafkaBroker

from monitor.bus import TopicSpec
from monitor.bus.kafka import KafkaBus
from monitor.errors import BusError
from monitor.settings import KafkaSettings, load_settings

pytestmark = pytest.mark.integration

# Failures are bounded by the request timeout (it also bounds a client's bootstrap), plus one probe.
FAIL_WITHIN = 15.0


def _round_trip(bus: KafkaBus, unique_name: Callable[[str], str]) -> None:
    """Create a topic, publish a record, read it back in a consumer group and commit."""
    topic = unique_name("tls")
    assert bus.create_topics([TopicSpec(topic, 1)]) == [topic]
    with bus.producer() as producer:
        producer.publish(topic, "k", b"over TLS")
    with bus.consumer([topic], group_id=unique_name("g")) as consumer:
        [record] = drain(consumer, 1)
        consumer.commit([record])
    assert (record.key, record.value) == ("k", b"over TLS")


def _refused(bus: KafkaBus) -> BusError:
    started = time.monotonic()
    with pytest.raises(BusError) as info:
        bus.create_topics([TopicSpec("never-made", 1)])
    assert time.monotonic() - started < FAIL_WITHIN
    return info.value


def _scram(broker: KafkaBroker, **overrides: object) -> KafkaSettings:
    [(user, password)] = broker.scram_users.items()
    values: dict[str, object] = {
        "bootstrap_servers": broker.sasl_ssl_bootstrap,
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_username": user,
        "sasl_password": password,
        "ssl_cafile": broker.pki.ca_file,
        "request_timeout": "3s",
    }
    return KafkaSettings(**{**values, **overrides})


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_a_bus_on_sasl_ssl_with_scram_publishes_and_reads_back(
    tls_broker: KafkaBroker, unique_name: Callable[[str], str], mechanism: str
) -> None:
    [(user, password)] = tls_broker.scram_users.items()
    settings = load_settings(  # the documented variables, as a deployment sets them
        {
            "MONITOR_KAFKA__BOOTSTRAP_SERVERS": tls_broker.sasl_ssl_bootstrap,
            "MONITOR_KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
            "MONITOR_KAFKA__SASL_MECHANISM": mechanism,
            "MONITOR_KAFKA__SASL_USERNAME": user,
            "MONITOR_KAFKA__SASL_PASSWORD": password,
            "MONITOR_KAFKA__SSL_CAFILE": str(tls_broker.pki.ca_file),
        }
    )
    _round_trip(KafkaBus(settings.kafka), unique_name)


def test_a_wrong_scram_password_is_a_bus_error_naming_the_login(tls_broker: KafkaBroker) -> None:
    error = _refused(KafkaBus(_scram(tls_broker, sasl_password="not-the-password")))
    assert "SASL login (SCRAM-SHA-256 as 'alice')" in str(error)
    assert "not-the-password" not in str(error)


def test_without_the_ca_the_broker_certificate_is_refused(tls_broker: KafkaBroker) -> None:
    error = _refused(KafkaBus(_scram(tls_broker, ssl_cafile=None)))
    assert "certificate" in str(error) and "unable to get local issuer certificate" in str(error)
    assert "MONITOR_KAFKA__SSL_CAFILE is unset" in str(error)
    assert not error.retriable  # no retry makes an untrusted certificate trusted


def test_a_client_certificate_opens_the_listener_that_requires_one(
    tls_broker: KafkaBroker, unique_name: Callable[[str], str]
) -> None:
    pki = tls_broker.pki
    tls = {
        "bootstrap_servers": tls_broker.ssl_bootstrap,
        "security_protocol": "SSL",
        "ssl_cafile": pki.ca_file,
        "request_timeout": "3s",
    }
    with_certificate = KafkaSettings(
        **tls, ssl_certfile=pki.client.cert, ssl_keyfile=pki.client.key, ssl_password=pki.client.key_password
    )
    _round_trip(KafkaBus(with_certificate), unique_name)

    error = _refused(KafkaBus(KafkaSettings(**tls)))
    assert "client certificate" in str(error) and "MONITOR_KAFKA__SSL_CERTFILE" in str(error)
    assert not error.retriable


def test_the_hostname_check_refuses_a_certificate_for_another_host_unless_turned_off(
    tls_broker: KafkaBroker, unique_name: Callable[[str], str]
) -> None:
    tls = {
        "bootstrap_servers": tls_broker.wrong_host_bootstrap,
        "security_protocol": "SSL",
        "ssl_cafile": tls_broker.pki.ca_file,
        "request_timeout": "3s",
    }
    error = _refused(KafkaBus(KafkaSettings(**tls)))
    assert "not valid for '127.0.0.1'" in str(error) and "MONITOR_KAFKA__SSL_CHECK_HOSTNAME" in str(error)
    assert not error.retriable

    _round_trip(KafkaBus(KafkaSettings(**tls, ssl_check_hostname=False)), unique_name)
