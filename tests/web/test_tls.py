"""HTTPS for an exposed dashboard: `mediaidx serve --tls-cert/--tls-key` serves the API over TLS (the login
cookie then marked Secure), refuses a broken pair before binding, and warns when a token would cross the
network in clear."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from bridge.errors import UsageError
from bridge.web.server import HttpOptions

TOKEN = "tls-test-token-0123456789"


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its unencrypted key, made here (no openssl binary needed)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mediaidx test")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def test_serve_over_https_with_a_secure_login_cookie(catalog, serve, tmp_path: Path) -> None:
    _lib, cat, cache = catalog
    cert, key = _self_signed(tmp_path)
    p = serve(cat, cache, ["--tls-cert", str(cert), "--tls-key", str(key), "--token", TOKEN])
    assert p.url.startswith("https://127.0.0.1:")
    with httpx.Client(base_url=p.url, verify=ssl.create_default_context(cafile=str(cert)), timeout=30) as h:
        assert h.get("/").status_code == 200  # the dashboard's shell
        assert h.get("/api/assets").status_code == 401  # TLS does not replace the token
        assert h.get("/api/assets", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        r = h.post("/api/login", json={"token": TOKEN})
        assert r.status_code == 204
        cookie = r.headers["set-cookie"].lower()
        assert "secure" in cookie and "httponly" in cookie and "samesite=strict" in cookie
    with pytest.raises(httpx.HTTPError):  # an unverified certificate is not trusted by a client
        httpx.get(p.url + "/api/health", timeout=10)
    plain = "http://" + p.url.removeprefix("https://")
    with pytest.raises(httpx.HTTPError):  # nothing is served in clear on that port
        httpx.get(plain + "/api/health", timeout=10)
    assert TOKEN not in p.stop()


def test_a_broken_certificate_pair_stops_serve_before_it_binds(catalog, tmp_path: Path) -> None:
    _lib, cat, cache = catalog
    cert, key = _self_signed(tmp_path)
    (tmp_path / "other").mkdir()
    other_cert, _ = _self_signed(tmp_path / "other")  # a certificate whose key is not the one given
    cases = [
        (["--tls-cert", str(cert)], "needs both"),
        (["--tls-cert", str(tmp_path / "missing.pem"), "--tls-key", str(key)], "no such file"),
        (["--tls-cert", str(other_cert), "--tls-key", str(key)], "not a certificate and its unencrypted key"),
    ]
    for extra, message in cases:
        r = subprocess.run([sys.executable, "-m", "bridge.cli.app", "--catalog", str(cat), "--cache-dir", str(cache),
                            "serve", "--bind", "tcp://127.0.0.1:*", "--http", "127.0.0.1:0", *extra],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and message in r.stderr and "listening" not in r.stdout, (extra, r.stderr)
        assert "Traceback" not in r.stderr


def test_an_exposed_address_without_tls_is_warned_about(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    assert "travels in clear" in (HttpOptions.parse("0.0.0.0:8765", TOKEN).cleartext_warning or "")
    assert HttpOptions.parse("0.0.0.0:8765", TOKEN, str(cert), str(key)).cleartext_warning is None
    assert HttpOptions.parse("127.0.0.1:8765").cleartext_warning is None  # loopback: nothing crosses a network
    with pytest.raises(UsageError):
        HttpOptions.parse("0.0.0.0:8765", None, str(cert), str(key))  # TLS is no substitute for the token
