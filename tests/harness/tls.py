"""A throwaway certificate authority for the TLS listeners of the test broker, made with ``openssl``.

:func:`make_test_pki` writes, in one folder, a CA and the certificates it signs (EC P-256, valid for two
days), all PEM:

* ``broker``: the broker's certificate, for ``127.0.0.1`` and ``localhost``, also as a PKCS12 key store
  (Java 17 does not decrypt a PBES2-encrypted PEM key, which is what Kafka's PEM key stores would need);
* ``wrong_host``: a broker certificate for ``wrong-host.invalid`` only, to see a hostname check fail;
* ``client``: a client certificate (``CN=monitor-test-client``) with a password-protected key, for a
  listener that requires client certificates.

Keys are encrypted PKCS#8 PEM (AES-256), with ``key_password``; Python's ``ssl`` module reads them as
they are. ``openssl`` is the
only tool needed; without it :class:`PkiUnavailable` is raised (the tests that need TLS skip).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

DAYS = "2"
_CURVE = ("-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256")


class PkiUnavailable(RuntimeError):
    """``openssl`` is not on PATH: no test certificates can be made."""


@dataclass(frozen=True)
class Identity:
    """A certificate (PEM), its private key (PEM, PKCS#8, encrypted with ``key_password``) and both in
    a PKCS12 key store (``keystore``, same password)."""

    cert: Path
    key: Path
    key_password: str
    keystore: Path


@dataclass(frozen=True)
class TestPki:
    """The files :func:`make_test_pki` wrote."""

    __test__ = False  # not a test class, whatever its name

    folder: Path
    ca_file: Path
    broker: Identity
    wrong_host: Identity
    client: Identity


def _openssl() -> str:
    found = shutil.which("openssl")
    if found is None:
        raise PkiUnavailable("openssl is not on PATH; the TLS test certificates are made with it")
    return found


def _run(*args: str, cwd: Path) -> None:
    proc = subprocess.run([_openssl(), *args], cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed (exit {proc.returncode}): {proc.stderr[-2000:]}")


def _new_key(folder: Path, name: str, password: str | None) -> Path:
    """An EC key, encrypted PKCS#8 PEM when a password is given."""
    key = folder / f"{name}.key"
    encryption = ("-aes-256-cbc", "-pass", f"pass:{password}") if password else ()
    _run("genpkey", *_CURVE, *encryption, "-out", str(key), cwd=folder)
    return key


def _issue(
    folder: Path,
    name: str,
    *,
    subject: str,
    extensions: str,
    serial: int,
    password: str,
) -> Identity:
    key = _new_key(folder, name, password)
    csr, ext, cert = folder / f"{name}.csr", folder / f"{name}.ext", folder / f"{name}.pem"
    passin = ("-passin", f"pass:{password}")
    _run("req", "-new", "-key", str(key), *passin, "-subj", subject, "-out", str(csr), cwd=folder)
    ext.write_text(
        "basicConstraints = critical, CA:FALSE\n"
        "keyUsage = critical, digitalSignature, keyEncipherment\n"
        "subjectKeyIdentifier = hash\n"
        "authorityKeyIdentifier = keyid, issuer\n" + extensions
    )
    _run(
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-set_serial",
        str(serial),
        "-days",
        DAYS,
        "-sha256",
        "-extfile",
        str(ext),
        "-out",
        str(cert),
        cwd=folder,
    )
    keystore = folder / f"{name}.p12"
    _run(
        "pkcs12",
        "-export",
        "-in",
        str(cert),
        "-inkey",
        str(key),
        *passin,
        "-name",
        name,
        "-passout",
        f"pass:{password}",
        "-out",
        str(keystore),
        cwd=folder,
    )
    csr.unlink()
    ext.unlink()
    return Identity(cert=cert, key=key, key_password=password, keystore=keystore)


def make_test_pki(folder: Path, *, key_password: str = "test-key-secret") -> TestPki:
    """Make the CA and its certificates in ``folder`` (created if need be); raises PkiUnavailable."""
    _openssl()
    folder.mkdir(parents=True, exist_ok=True)
    ca_key = _new_key(folder, "ca", None)
    _run(
        "req",
        "-x509",
        "-new",
        "-key",
        str(ca_key),
        "-subj",
        "/CN=monitor-test-ca",
        "-days",
        DAYS,
        "-sha256",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        "-addext",
        "subjectKeyIdentifier=hash",
        "-out",
        "ca.pem",
        cwd=folder,
    )
    server = "extendedKeyUsage = serverAuth\n"
    return TestPki(
        folder=folder,
        ca_file=folder / "ca.pem",
        broker=_issue(
            folder,
            "broker",
            subject="/CN=127.0.0.1",
            extensions=server + "subjectAltName = IP:127.0.0.1, DNS:localhost\n",
            serial=2,
            password=key_password,
        ),
        wrong_host=_issue(
            folder,
            "wrong-host",
            subject="/CN=wrong-host.invalid",
            extensions=server + "subjectAltName = DNS:wrong-host.invalid\n",
            serial=3,
            password=key_password,
        ),
        client=_issue(
            folder,
            "client",
            subject="/CN=monitor-test-client",
            extensions="extendedKeyUsage = clientAuth\n",
            serial=4,
            password=key_password,
        ),
    )
