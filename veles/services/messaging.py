"""Outgoing messages: SMS through Twilio's official client, e-mail over SMTP with attachments.

One module for both because every caller (alert delivery, sign-in codes, scheduled reports) needs
the same guarantees: input is checked before anything is sent and a bad field is named; a server
that cannot be reached or refuses raises `MessagingError` with the reason within
`Settings.messaging_timeout` seconds, never hangs; nothing is retried here (the caller decides,
because only it knows whether a duplicate SMS is worse than a missing one).

Both senders are synchronous (smtplib, Twilio's requests-based client); async callers run them with
`asyncio.to_thread`.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid, parseaddr

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from veles.config import Settings

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
SMS_MAX_CHARS = 1600  # Twilio refuses longer bodies (error 21617)


class MessagingError(RuntimeError):
    """A message could not be sent; the text says which channel, to whom and why."""


class NotConfiguredError(MessagingError):
    """The channel has no server configured (SMTP_HOST or the Twilio settings are unset)."""


@dataclass(frozen=True)
class Attachment:
    """A file carried by an e-mail (a report, say)."""

    filename: str
    content: bytes
    content_type: str = "application/octet-stream"


@dataclass(frozen=True)
class SentSms:
    """Twilio's answer to an accepted message: its SID and status (`queued`, `sent`, ...)."""

    sid: str
    to: str
    status: str


def check_phone(value: str, field: str = "to") -> str:
    """`value` as an E.164 number (`+` and 7-15 digits); ValueError naming `field` otherwise."""
    number = value.strip()
    if not E164.match(number):
        raise ValueError(f"{field}: {value!r} is not an E.164 phone number like +4915112345678")
    return number


def check_email(value: str, field: str = "to") -> str:
    """`value` as a bare address (`name@domain`); ValueError naming `field` otherwise."""
    _, address = parseaddr(value)
    local, _, domain = address.rpartition("@")
    if not local or "." not in domain or any(c.isspace() for c in address) or address != value.strip():
        raise ValueError(f"{field}: {value!r} is not an e-mail address")
    return address


def send_sms(settings: Settings, to: str, body: str) -> SentSms:
    """Send one SMS through Twilio's Messages API (at `settings.twilio_api_url`)."""
    number = check_phone(to)
    if not body.strip():
        raise ValueError("body: an SMS needs text")
    if len(body) > SMS_MAX_CHARS:
        raise ValueError(f"body: {len(body)} characters, Twilio takes at most {SMS_MAX_CHARS}")
    sid, token, sender = settings.twilio_account_sid, settings.twilio_auth_token, settings.twilio_from_number
    if not (sid and token and sender):
        raise NotConfiguredError(
            "SMS is not configured: set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM_NUMBER"
        )
    client = Client(sid, token.get_secret_value(),
                    http_client=TwilioHttpClient(timeout=settings.messaging_timeout))
    client.api.base_url = settings.twilio_api_url  # the Api domain builds every URL from this
    try:
        message = client.messages.create(to=number, from_=sender, body=body)
    except TwilioRestException as exc:
        raise MessagingError(f"SMS to {number}: Twilio refused it (HTTP {exc.status}, "
                             f"error {exc.code}): {exc.msg}") from exc
    except (requests.RequestException, TwilioException) as exc:
        raise MessagingError(f"SMS to {number}: Twilio at {settings.twilio_api_url} "
                             f"could not be reached: {exc}") from exc
    return SentSms(sid=str(message.sid), to=number, status=str(message.status))


def build_email(
    sender: str,
    to: Sequence[str],
    subject: str,
    text: str,
    html: str | None = None,
    attachments: Sequence[Attachment] = (),
) -> EmailMessage:
    """A MIME message: plain text, optionally an HTML alternative, then the attachments."""
    if not to:
        raise ValueError("to: an e-mail needs at least one recipient")
    recipients = [check_email(address) for address in to]
    if not subject.strip() or "\n" in subject or "\r" in subject:
        raise ValueError("subject: must be one non-empty line")
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain=parseaddr(sender)[1].rpartition("@")[2] or None)
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    for attachment in attachments:
        if not attachment.filename or "/" in attachment.filename or "\n" in attachment.filename:
            raise ValueError(f"attachments: {attachment.filename!r} is not a file name")
        maintype, _, subtype = attachment.content_type.partition("/")
        if not maintype or not subtype:
            raise ValueError(f"attachments: {attachment.content_type!r} is not a MIME type like text/csv")
        message.add_attachment(attachment.content, maintype=maintype, subtype=subtype,
                               filename=attachment.filename)
    return message


def send_email(
    settings: Settings,
    to: Sequence[str],
    subject: str,
    text: str,
    html: str | None = None,
    attachments: Sequence[Attachment] = (),
) -> str:
    """Send one e-mail to every address in `to`; returns its Message-ID.

    Raises MessagingError if the server cannot be reached, refuses the login or any recipient
    (a partly refused message names the refused addresses: the others did receive it).
    """
    message = build_email(settings.smtp_from, to, subject, text, html, attachments)
    if not settings.smtp_host:
        raise NotConfiguredError("e-mail is not configured: set SMTP_HOST (and SMTP_PORT, SMTP_FROM)")
    server = f"{settings.smtp_host}:{settings.smtp_port}"
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.messaging_timeout) as smtp:
            if settings.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_user:
                password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
                smtp.login(settings.smtp_user, password)
            refused = smtp.send_message(message)
    except smtplib.SMTPNotSupportedError as exc:
        raise MessagingError(f"e-mail via {server}: the server does not offer what is configured "
                             f"(SMTP_STARTTLS or SMTP_USER): {exc}") from exc
    except smtplib.SMTPAuthenticationError as exc:
        error = exc.smtp_error
        reason = error.decode(errors="replace") if isinstance(error, bytes) else error
        raise MessagingError(f"e-mail via {server}: login as {settings.smtp_user!r} refused: "
                             f"{exc.smtp_code} {reason}") from exc
    except smtplib.SMTPRecipientsRefused as exc:
        raise MessagingError(f"e-mail via {server}: every recipient refused: "
                             f"{', '.join(sorted(exc.recipients))}") from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise MessagingError(f"e-mail via {server} failed: {exc or type(exc).__name__}") from exc
    if refused:
        raise MessagingError(f"e-mail via {server}: refused for {', '.join(sorted(refused))} "
                             "(sent to the other recipients)")
    return str(message["Message-ID"])
