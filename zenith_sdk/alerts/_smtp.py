"""The email channel: one message to every recipient over SMTP (stdlib smtplib), with STARTTLS, SSL or neither."""

from __future__ import annotations

import smtplib
import ssl
import time
from collections.abc import Callable, Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr

from zenith_protocol.alerts import Notification
from zenith_sdk.alerts._delivery import Attempt, BaseChannel, RetryPolicy
from zenith_sdk.alerts.messages import Message

__all__ = ["SECURITY_MODES", "SmtpChannel"]

SECURITY_MODES = ("starttls", "ssl", "none", "auto")
"""``starttls``: upgrade a plain connection (required); ``ssl``: TLS from the start; ``none``: no encryption;
``auto``: upgrade when the server offers STARTTLS, else stay plain."""


def _transient(code: int) -> bool:
    """SMTP 4xx replies are temporary failures (RFC 5321, 4.2.1): worth another attempt."""
    return 400 <= code < 500


class SmtpChannel(BaseChannel):
    """Sends one email per notification to all recipients: subject = title, text body with the footer."""

    def __init__(
        self,
        name: str = "email",
        *,
        host: str,
        port: int,
        sender: str,
        recipients: Sequence[str],
        user: str | None = None,
        password: str | None = None,
        security: str = "starttls",
        policy: RetryPolicy,
        title_template: str | None = None,
        body_template: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(name, policy=policy, title_template=title_template, body_template=body_template, sleep=sleep)
        if not recipients:
            raise ValueError("an email channel needs at least one recipient in `to`")
        self.host = host
        self.port = port
        self.sender = sender
        self._envelope_sender = parseaddr(sender)[1] or sender
        self.recipients = tuple(recipients)
        self.user = user
        self._password = password
        if security not in SECURITY_MODES:
            raise ValueError(f"email security must be one of {', '.join(SECURITY_MODES)}, got {security!r}")
        self.security = security
        self._ssl_context = ssl_context

    def __repr__(self) -> str:
        return (
            f"SmtpChannel(name={self.name!r}, host={self.host!r}, port={self.port}, security={self.security!r}, "
            f"user={self.user!r}, password={'***' if self._password else None})"
        )

    def _secrets(self) -> tuple[str | None, ...]:
        return (self._password,)

    def _email(self, n: Notification, message: Message) -> EmailMessage:
        email = EmailMessage()
        email["Subject"] = message.title
        email["From"] = self.sender
        email["To"] = ", ".join(self.recipients)
        email["Date"] = formatdate(usegmt=True)
        email["Message-ID"] = make_msgid(domain=self._envelope_sender.rpartition("@")[2] or self.host)
        email["X-Zenith-Notification-Id"] = n.id
        email.set_content(f"{message.body}\n\n-- \n{message.footer}\n")
        return email

    def _connect(self) -> smtplib.SMTP:
        context = self._ssl_context or ssl.create_default_context()
        timeout = self.policy.timeout_s
        if self.security == "ssl":
            return smtplib.SMTP_SSL(self.host, self.port, timeout=timeout, context=context)
        smtp = smtplib.SMTP(self.host, self.port, timeout=timeout)
        try:
            smtp.ehlo()
            if self.security == "starttls" or (self.security == "auto" and smtp.has_extn("starttls")):
                smtp.starttls(context=context)
                smtp.ehlo()
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _attempt(self, n: Notification, message: Message | None) -> Attempt:
        if message is None:
            raise TypeError("SmtpChannel sends a rendered message")
        email = self._email(n, message)
        try:
            with self._connect() as smtp:
                if self.user and self._password:
                    smtp.login(self.user, self._password)
                smtp.send_message(email, from_addr=self._envelope_sender, to_addrs=list(self.recipients))
        except (smtplib.SMTPException, OSError) as exc:
            return self._failed(exc)
        return Attempt(True)

    def _failed(self, exc: smtplib.SMTPException | OSError) -> Attempt:
        """What a failed attempt means: SMTP 4xx replies, timeouts and lost connections may pass, the rest not."""
        where = f"SMTP server {self.host}:{self.port}"
        if isinstance(exc, smtplib.SMTPNotSupportedError):
            return Attempt(
                False, error=f"{where} does not offer STARTTLS; set the channel's security to 'ssl' or 'none'"
            )
        if isinstance(exc, ssl.SSLCertVerificationError):
            return Attempt(False, error=f"{where} presented a certificate that does not verify: {exc.verify_message}")
        if isinstance(exc, TimeoutError):
            return Attempt(False, error=f"no answer from {where} within {self.policy.timeout_s:g} s", retryable=True)
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            codes = [code for code, _ in exc.recipients.values()]
            error = f"{where} refused every recipient: {codes}"
            return Attempt(
                False, status=codes[0] if codes else None, error=error, retryable=all(map(_transient, codes))
            )
        if isinstance(exc, smtplib.SMTPAuthenticationError):
            error = f"{where} refused the login of user {self.user!r} ({exc.smtp_code}); check smtpUser and smtpPass"
        elif isinstance(exc, smtplib.SMTPResponseException):
            reply = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else exc.smtp_error
            error = f"{where} answered {exc.smtp_code} {reply}"
        else:
            return Attempt(False, error=f"could not send through {where}: {type(exc).__name__}: {exc}", retryable=True)
        return Attempt(False, status=exc.smtp_code, error=error, retryable=_transient(exc.smtp_code))
