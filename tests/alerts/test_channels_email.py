"""The email channel against a real SMTP server (aiosmtpd) on 127.0.0.1.

Plain SMTP, STARTTLS and SSL; the TLS tests make a self-signed certificate for 127.0.0.1 with
the ``cryptography`` package (a development dependency).
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session
from alert_receivers import MailBox, alert_config, notification, smtp_server
from patience import HANG_S

from zenith_sdk.alerts.channels import Delivery, RetryPolicy, SmtpChannel, configured_channels
from zenith_sdk.demo._redis import free_port

PASSWORD = "s3cret-smtp-password"
FAST = RetryPolicy(timeout_s=HANG_S, retries=2, backoff_s=0.01)


def _channel(port: int, **options: Any) -> SmtpChannel:
    settings: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "sender": "zenith@example.com",
        "recipients": ["ops@example.com", "oncall@example.com"],
        "security": "none",
        "policy": FAST,
    }
    settings.update(options)
    return SmtpChannel("email", **settings)


def test_one_message_goes_to_every_recipient_with_the_title_as_subject() -> None:
    box = MailBox()
    n = notification(subjects=3)
    with smtp_server(box) as server:
        delivery = _channel(server.port).send(n)
    assert (delivery.ok, delivery.attempts, delivery.error) == (True, 1, None)
    (mail,) = box.received
    assert mail.sender == "zenith@example.com"
    assert mail.recipients == ["ops@example.com", "oncall@example.com"]
    assert mail.message["Subject"] == "[FIRING critical] Queue backlog: 3 subjects"
    assert mail.message["To"] == "ops@example.com, oncall@example.com"
    assert mail.message["X-Zenith-Notification-Id"] == n.id
    text = mail.message.get_content()
    assert "- queue:q02: 1502 since 2026-05-28T20:14:40Z (for 12m)" in text
    assert text.rstrip().endswith(f"zenith alert {n.id} at 2026-05-28T20:26:40Z")


def test_a_temporary_smtp_failure_is_retried() -> None:
    box = MailBox(replies=["451 4.3.0 try again later"])
    with smtp_server(box) as server:
        delivery = _channel(server.port).send(notification())
    assert (delivery.ok, delivery.attempts) == (True, 2)
    assert box.data_commands == 2 and len(box.received) == 1


def test_a_permanent_smtp_failure_is_not_retried() -> None:
    box = MailBox(replies=["554 5.6.0 message refused"] * 3)
    with smtp_server(box) as server:
        delivery = _channel(server.port).send(notification())
    assert (delivery.ok, delivery.attempts, delivery.status) == (False, 1, 554)
    assert delivery.error is not None and "answered 554 5.6.0 message refused" in delivery.error


def _refuse_all(server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: object) -> AuthResult:
    return AuthResult(success=False, handled=False)


def test_a_refused_login_names_the_user_never_the_password(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="zenith_sdk.alerts")
    with smtp_server(MailBox(), authenticator=_refuse_all, auth_require_tls=False) as server:
        channel = _channel(server.port, user="alerts", password=PASSWORD)
        delivery = channel.send(notification())
    assert (delivery.ok, delivery.attempts, delivery.status) == (False, 1, 535)
    assert delivery.error is not None and "refused the login of user 'alerts' (535)" in delivery.error
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "refused the login" in logged
    for shown in (delivery.error, logged, repr(channel), repr(delivery)):
        assert PASSWORD not in shown


def test_an_unreachable_server_is_retried_then_reported() -> None:
    delivery = _channel(free_port(), password=PASSWORD, user="alerts").send(notification())
    assert (delivery.ok, delivery.attempts) == (False, 3)
    assert delivery.error is not None and delivery.error.startswith("could not send through SMTP server 127.0.0.1:")
    assert PASSWORD not in delivery.error


def test_starttls_required_but_not_offered_is_not_retried() -> None:
    with smtp_server(MailBox()) as server:
        delivery = _channel(server.port, security="starttls").send(notification())
    assert (delivery.ok, delivery.attempts) == (False, 1)
    assert delivery.error == (
        f"SMTP server 127.0.0.1:{server.port} does not offer STARTTLS; set the channel's security to 'ssl' or 'none'"
    )


def test_settings_without_security_send_in_plain_to_a_server_without_starttls() -> None:
    # As the Node console's mailer did: STARTTLS when offered, else plain.
    box = MailBox()
    with smtp_server(box) as server:
        config = alert_config(
            {
                "channels": {
                    "email": {
                        "enabled": True,
                        "smtpHost": "127.0.0.1",
                        "smtpPort": server.port,
                        "from": "zenith@example.com",
                        "to": "ops@example.com",
                    }
                }
            }
        )
        delivery = configured_channels(config)["email"].send(notification())
    assert (delivery.ok, delivery.error) == (True, None)
    assert len(box.received) == 1


def test_configured_email_reads_the_node_settings() -> None:
    box = MailBox()
    with smtp_server(box) as server:
        config = alert_config(
            {
                "channels": {
                    "email": {
                        "enabled": True,
                        "smtpHost": "127.0.0.1",
                        "smtpPort": str(server.port),
                        "from": "Zenith <zenith@example.com>",
                        "to": "ops@example.com, Oncall <oncall@example.com>",
                        "security": "none",
                        "templates": {"title": "{{ kind }} {{ rule_name }}"},
                    }
                }
            }
        )
        delivery = configured_channels(config)["email"].send(notification())
    assert delivery.ok
    (mail,) = box.received
    assert (mail.sender, mail.recipients) == ("zenith@example.com", ["ops@example.com", "oncall@example.com"])
    assert mail.message["From"] == "Zenith <zenith@example.com>"
    assert mail.message["Subject"] == "firing Queue backlog"
    assert mail.message["Message-ID"].endswith("@example.com>")


def test_unusable_email_settings_fail_every_send_with_what_to_fix() -> None:
    base = {"enabled": True, "smtpHost": "127.0.0.1", "from": "z@example.com", "to": "ops@example.com"}
    for settings, problem in (
        ({**base, "security": "tls"}, "email: email security must be one of starttls, ssl, none, auto, got 'tls'"),
        ({**base, "to": ""}, "email: to not set; set it in the alert config"),
    ):
        channel = configured_channels(alert_config({"channels": {"email": settings}}))["email"]
        assert channel.send(notification()) == Delivery("email", False, 0, error=problem)


# -- TLS, when a certificate can be made -----------------------------------------------------------


@pytest.fixture
def certificate(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A self-signed certificate for 127.0.0.1 and its key, as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    yield cert_file, key_file


def _contexts(certificate: tuple[Path, Path]) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    cert_file, key_file = certificate
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert_file, key_file)
    return server_context, ssl.create_default_context(cafile=str(cert_file))


def test_starttls_with_login(certificate: tuple[Path, Path]) -> None:
    server_context, client_context = _contexts(certificate)
    box = MailBox()

    def accept(server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any) -> AuthResult:
        return AuthResult(success=auth_data.login == b"alerts" and auth_data.password == PASSWORD.encode())

    with smtp_server(box, tls_context=server_context, require_starttls=True, authenticator=accept) as server:
        channel = _channel(
            server.port, security="starttls", ssl_context=client_context, user="alerts", password=PASSWORD
        )
        delivery = channel.send(notification())
    assert delivery.ok, delivery.error
    assert len(box.received) == 1


def test_ssl_from_the_start(certificate: tuple[Path, Path]) -> None:
    server_context, client_context = _contexts(certificate)
    box = MailBox()
    with smtp_server(box, ssl_context=server_context) as server:
        delivery = _channel(server.port, security="ssl", ssl_context=client_context).send(notification())
    assert delivery.ok, delivery.error
    assert len(box.received) == 1


def test_an_untrusted_certificate_is_not_retried(certificate: tuple[Path, Path]) -> None:
    server_context, _ = _contexts(certificate)
    with smtp_server(MailBox(), ssl_context=server_context) as server:
        delivery = _channel(server.port, security="ssl").send(notification())
    assert (delivery.ok, delivery.attempts) == (False, 1)
    assert delivery.error is not None and "certificate that does not verify" in delivery.error
