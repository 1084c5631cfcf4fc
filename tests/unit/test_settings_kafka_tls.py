"""Kafka TLS and SASL settings: what fits together loads, every mismatch stops the process at start with
the variables named, and the values reach kafka-python under its own names."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from harness.tls import PkiUnavailable, TestPki, make_test_pki
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

from monitor.bus.kafka import KafkaBus, _host_port
from monitor.errors import ConfigError
from monitor.settings import load_settings

K = "MONITOR_KAFKA__"
SCRAM = {
    f"{K}SASL_MECHANISM": "SCRAM-SHA-256",
    f"{K}SASL_USERNAME": "alice",
    f"{K}SASL_PASSWORD": "sasl-secret",
}
SCRAM_NAMES = ["SASL_MECHANISM", "SASL_USERNAME", "SASL_PASSWORD"]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    try:
        return make_test_pki(tmp_path_factory.mktemp("pki"))
    except PkiUnavailable as exc:
        pytest.skip(str(exc))


def refused(environ: dict[str, str]) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_settings(environ)
    return info.value


def keys(error: ConfigError) -> list[str]:
    """The variables an error names, in order: its key, then those of its further problems."""
    return [error.key] + [line.split(": ")[1] for line in error.more]


def test_a_complete_sasl_ssl_configuration_loads(pki: TestPki) -> None:
    settings = load_settings(
        {
            f"{K}BOOTSTRAP_SERVERS": "kafka:9093",
            f"{K}SECURITY_PROTOCOL": "SASL_SSL",
            **SCRAM,
            f"{K}SSL_CAFILE": str(pki.ca_file),
            f"{K}SSL_CERTFILE": str(pki.client.cert),
            f"{K}SSL_KEYFILE": str(pki.client.key),
            f"{K}SSL_PASSWORD": pki.client.key_password,
            f"{K}SSL_CHECK_HOSTNAME": "false",
        }
    ).kafka
    assert settings.ssl_cafile == pki.ca_file and settings.ssl_keyfile == pki.client.key
    assert settings.ssl_password is not None and settings.ssl_check_hostname is False
    assert pki.client.key_password not in repr(settings) and "sasl-secret" not in repr(settings)
    assert load_settings({}).kafka.ssl_check_hostname is True


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SSL"])
def test_sasl_settings_with_a_protocol_without_sasl_are_refused(protocol: str) -> None:
    error = refused({f"{K}SECURITY_PROTOCOL": protocol, **SCRAM})
    assert keys(error) == [f"{K}SASL_MECHANISM", f"{K}SASL_USERNAME", f"{K}SASL_PASSWORD"]
    assert f"unless {K}SECURITY_PROTOCOL is SASL_SSL or SASL_PLAINTEXT (it is {protocol}" in str(error)
    assert "sasl-secret" not in str(error)


@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
@pytest.mark.parametrize("missing", ["SASL_MECHANISM", "SASL_USERNAME", "SASL_PASSWORD"])
def test_a_sasl_protocol_needs_mechanism_username_and_password(protocol: str, missing: str) -> None:
    environ = {f"{K}SECURITY_PROTOCOL": protocol, **SCRAM}
    del environ[K + missing]
    error = refused(environ)
    assert keys(error) == [K + missing]
    assert f"expected a value, as {K}SECURITY_PROTOCOL is {protocol}" in str(error)
    assert keys(refused({f"{K}SECURITY_PROTOCOL": protocol})) == [K + m for m in SCRAM_NAMES]


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SASL_PLAINTEXT"])
@pytest.mark.parametrize("setting", ["SSL_CAFILE", "SSL_CERTFILE", "SSL_KEYFILE", "SSL_PASSWORD"])
def test_tls_settings_with_a_protocol_without_tls_are_refused(
    pki: TestPki, protocol: str, setting: str
) -> None:
    value = {
        "SSL_CAFILE": pki.ca_file,
        "SSL_CERTFILE": pki.client.cert,
        "SSL_KEYFILE": pki.client.key,
        "SSL_PASSWORD": "key-secret",
    }[setting]
    sasl = SCRAM if protocol.startswith("SASL") else {}
    error = refused({f"{K}SECURITY_PROTOCOL": protocol, **sasl, K + setting: str(value)})
    assert error.key == K + setting
    assert f"no value unless {K}SECURITY_PROTOCOL is SSL or SASL_SSL (it is {protocol}, no TLS)" in str(error)
    assert "key-secret" not in str(error)


def test_a_client_certificate_and_its_key_go_together(pki: TestPki) -> None:
    tls = {f"{K}SECURITY_PROTOCOL": "SSL"}
    error = refused({**tls, f"{K}SSL_CERTFILE": str(pki.client.cert)})
    assert error.key == f"{K}SSL_KEYFILE" and f"client certificate {K}SSL_CERTFILE" in str(error)
    error = refused({**tls, f"{K}SSL_KEYFILE": str(pki.client.key)})
    assert error.key == f"{K}SSL_KEYFILE" and f"no value without {K}SSL_CERTFILE" in str(error)
    error = refused({**tls, f"{K}SSL_PASSWORD": "key-secret"})
    assert error.key == f"{K}SSL_KEYFILE" and f"the key file that {K}SSL_PASSWORD decrypts" in str(error)


@pytest.mark.parametrize("setting", ["SSL_CAFILE", "SSL_CERTFILE", "SSL_KEYFILE"])
def test_missing_files_folders_and_files_of_something_else_are_refused_saying_which(
    pki: TestPki, tmp_path: Path, setting: str
) -> None:
    pair = {
        "SSL_CAFILE": {},
        "SSL_CERTFILE": {f"{K}SSL_KEYFILE": str(pki.client.key), f"{K}SSL_PASSWORD": pki.client.key_password},
        "SSL_KEYFILE": {f"{K}SSL_CERTFILE": str(pki.client.cert)},
    }[setting]
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not PEM at all\n")
    for path, expected in [
        (tmp_path / "missing.pem", "an existing file (there is none at this path)"),
        (tmp_path, "a file (this is a folder)"),
        (garbage, "PEM"),
    ]:
        error = refused({f"{K}SECURITY_PROTOCOL": "SSL", **pair, K + setting: str(path)})
        assert error.key == K + setting, error
        assert expected in error.expected and error.got == str(path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_is_refused(pki: TestPki, tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_bytes(pki.ca_file.read_bytes())
    ca.chmod(0)
    error = refused({f"{K}SECURITY_PROTOCOL": "SSL", f"{K}SSL_CAFILE": str(ca)})
    assert error.key == f"{K}SSL_CAFILE" and "permission denied" in error.expected


def test_a_key_must_be_the_certificates_and_open_with_its_password(pki: TestPki) -> None:
    tls = {f"{K}SECURITY_PROTOCOL": "SSL", f"{K}SSL_CERTFILE": str(pki.client.cert)}
    password = {f"{K}SSL_PASSWORD": pki.client.key_password}
    error = refused({**tls, **password, f"{K}SSL_KEYFILE": str(pki.broker.key)})  # another's key
    assert error.key == f"{K}SSL_KEYFILE" and "belongs to another certificate" in str(error)
    error = refused({**tls, f"{K}SSL_PASSWORD": "wrong-secret", f"{K}SSL_KEYFILE": str(pki.client.key)})
    assert f"that {K}SSL_PASSWORD decrypts (the password is wrong" in str(error)
    assert "wrong-secret" not in str(error)
    # Encrypted and no password: refused at once (OpenSSL would otherwise prompt on the terminal).
    error = refused({**tls, f"{K}SSL_KEYFILE": str(pki.client.key)})
    assert f"or {K}SSL_PASSWORD set (this key is encrypted)" in str(error)


def test_empty_variables_are_no_value() -> None:
    settings = load_settings(
        {
            f"{K}SECURITY_PROTOCOL": "SSL",
            f"{K}SSL_CAFILE": "",
            f"{K}SASL_USERNAME": " ",
            f"{K}SSL_PASSWORD": "",
        }
    ).kafka
    assert settings.ssl_cafile is None and settings.sasl_username is None and settings.ssl_password is None


def test_a_mismatch_stops_the_cli_before_anything_runs(tmp_path: Path, monkeypatch, capsys) -> None:
    from pipelines.cli import main

    monkeypatch.setenv(f"{K}SECURITY_PROTOCOL", "PLAINTEXT")
    monkeypatch.setenv(f"{K}SSL_CAFILE", str(tmp_path / "ca.pem"))
    state = tmp_path / "state"
    assert main(["run", "--once", "--state-dir", str(state)]) == 2
    _, err = capsys.readouterr()
    assert err.startswith(
        f"monitor: configuration error: environment: {K}SSL_CAFILE: expected no value unless"
    )
    assert not state.exists()


def test_the_bus_passes_tls_and_sasl_settings_under_kafka_python_names(pki: TestPki) -> None:
    settings = load_settings(
        {
            f"{K}BOOTSTRAP_SERVERS": "a:9093,b:9093",
            f"{K}SECURITY_PROTOCOL": "SASL_SSL",
            **SCRAM,
            f"{K}SSL_CAFILE": str(pki.ca_file),
            f"{K}SSL_CERTFILE": str(pki.client.cert),
            f"{K}SSL_KEYFILE": str(pki.client.key),
            f"{K}SSL_PASSWORD": pki.client.key_password,
            f"{K}SSL_CHECK_HOSTNAME": "false",
            f"{K}REQUEST_TIMEOUT": "7s",
        }
    ).kafka
    common = KafkaBus(settings)._common
    common.pop("kafka_client")  # the bus's own factory of network clients (closes those a failure made)
    assert common == {
        "bootstrap_servers": ["a:9093", "b:9093"],
        "client_id": "india-us-monitor",
        "security_protocol": "SASL_SSL",
        "request_timeout_ms": 7000,
        "bootstrap_timeout_ms": 7000,
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "alice",  # kafka-python's name for the SCRAM user too
        "sasl_plain_password": "sasl-secret",
        "ssl_check_hostname": False,
        "ssl_cafile": str(pki.ca_file),
        "ssl_certfile": str(pki.client.cert),
        "ssl_keyfile": str(pki.client.key),
        "ssl_password": pki.client.key_password,
    }
    for client in (KafkaProducer, KafkaConsumer, KafkaAdminClient):
        assert set(common) <= set(client.DEFAULT_CONFIG), client.__name__
    plain = KafkaBus(load_settings({f"{K}BOOTSTRAP_SERVERS": "a:9092"}).kafka)._common
    assert not {k for k in plain if k.startswith(("ssl_", "sasl_"))}


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        ("kafka:9093", ("kafka", 9093)),
        ("kafka", ("kafka", 9092)),
        ("[::1]:9093", ("::1", 9093)),
        ("[::1]", ("::1", 9092)),
        (" 10.0.0.1:19092 ", ("10.0.0.1", 19092)),
    ],
)
def test_bootstrap_server_entries_for_the_connection_probe(server: str, expected: tuple[str, int]) -> None:
    assert _host_port(server) == expected
