"""E-mail out through SMTP (``smtplib``): the adapter behind the e-mail channel's outbox consumer.

    mailer = mailer_from_url("smtp://127.0.0.1:1025?from=noreply@lender.example")
    mailer.send(to="borrower@example.com", subject="…", body="…", message_id="<uuid>")

The outbox message id becomes the e-mail's ``Message-ID`` header, so that if a consumer dies
between handing the mail to the server and recording the delivery, the duplicate it sends after
redelivery carries the same id and mail systems can drop it. ``smtps://`` connects with TLS,
``?starttls=1`` upgrades a plain connection. Connection and protocol failures raise
``MailUnavailable`` (retry later); a recipient the server refuses raises ``MailRejected`` (retrying
does not help).
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from collectguard.adapters.logging import get_logger

__all__ = ["LogMailer", "MailRejected", "MailUnavailable", "Mailer", "SmtpMailer", "mailer_from_url"]

DEFAULT_SENDER = "collectguard@localhost"


class MailUnavailable(RuntimeError):
    """The SMTP server could not be reached or failed: the message should be retried."""


class MailRejected(ValueError):
    """The server refused the recipient or the message: retrying the same message will not help."""


class Mailer(Protocol):
    def send(self, *, to: str, subject: str, body: str, message_id: str) -> None: ...


@dataclass
class SmtpMailer:
    """One SMTP connection per message: consumers send few mails a second and must survive restarts."""

    host: str
    port: int = 25
    sender: str = DEFAULT_SENDER
    username: str | None = None
    password: str | None = None
    tls: bool = False  # smtps: TLS from the first byte
    starttls: bool = False
    timeout: float = 10.0

    def _message(self, *, to: str, subject: str, body: str, message_id: str) -> EmailMessage:
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = self.sender, to, subject
        domain = self.sender.rsplit("@", 1)[-1] or "localhost"
        msg["Message-ID"] = f"<{message_id}@{domain}>"
        msg.set_content(body)  # UTF-8: Chinese text is encoded as the standard requires
        return msg

    def send(self, *, to: str, subject: str, body: str, message_id: str) -> None:
        """Hand one message to the server; raises ``MailUnavailable`` or ``MailRejected``."""
        msg = self._message(to=to, subject=subject, body=body, message_id=message_id)
        cls = smtplib.SMTP_SSL if self.tls else smtplib.SMTP
        try:
            with cls(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.username:
                    smtp.login(self.username, self.password or "")
                smtp.send_message(msg)
        except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
            code = getattr(exc, "smtp_code", None)
            if isinstance(code, int) and 400 <= code < 500:  # 4xx is temporary by RFC 5321
                raise MailUnavailable(f"SMTP server deferred the message: {exc}") from exc
            raise MailRejected(f"SMTP server refused the message: {exc}") from exc
        except (OSError, smtplib.SMTPException) as exc:  # TimeoutError is an OSError
            raise MailUnavailable(f"SMTP server {self.host}:{self.port} unavailable: {exc}") from exc


class LogMailer:
    """Development without an SMTP server: the mail is logged (recipient masked), not sent."""

    def __init__(self) -> None:
        self.log = get_logger("collectguard.mailer")

    def send(self, *, to: str, subject: str, body: str, message_id: str) -> None:
        """Log that the mail would have been sent."""
        local, _, domain = to.partition("@")
        self.log.info("mail_not_sent_no_smtp", to=f"{local[:1]}***@{domain}", message_id=message_id,
                      subject_chars=len(subject), body_chars=len(body))


def mailer_from_url(url: str) -> SmtpMailer:
    """``smtp://[user:password@]host[:port][?from=addr&starttls=1]`` (or ``smtps://``) -> ``SmtpMailer``."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError(f"not an SMTP URL (smtp://host:port): {url!r}")
    query = parse_qs(parts.query)
    tls = parts.scheme == "smtps"
    return SmtpMailer(
        host=parts.hostname, port=parts.port or (465 if tls else 25),
        sender=query.get("from", [DEFAULT_SENDER])[0],
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        tls=tls, starttls=query.get("starttls", ["0"])[0] in ("1", "true", "yes"))
