"""SMS through the official Twilio client and e-mail over smtplib, against local servers."""

from __future__ import annotations

from typing import Any

import pytest

from tests.stubs.smtp_stub import SmtpStub, free_port
from tests.stubs.twilio_stub import TwilioStub
from veles.config import Settings
from veles.services.messaging import (
    Attachment,
    MessagingError,
    NotConfiguredError,
    send_email,
    send_sms,
)


def settings(**fields: Any) -> Settings:
    """Explicit settings, so a developer's environment or `.env` cannot change what is tested."""
    return Settings(_env_file=None, **fields)


def test_sms_goes_through_twilio_client_to_the_stub(twilio_stub: TwilioStub) -> None:
    sent = send_sms(settings(**twilio_stub.settings_fields()), "+4915112345678", "Stop-out on 100042")
    assert sent.sid.startswith("SM")
    assert sent.status == "queued"
    assert [(m.to, m.from_, m.body, m.sid) for m in twilio_stub.messages] == [
        ("+4915112345678", twilio_stub.from_number, "Stop-out on 100042", sent.sid)
    ]


def test_sms_error_from_twilio_names_code_and_reason(twilio_stub: TwilioStub) -> None:
    twilio_stub.reject("+4915100000000", 21610, "Attempt to send to unsubscribed recipient")
    with pytest.raises(MessagingError, match=r"error 21610\): .*Attempt to send to unsubscribed"):
        send_sms(settings(**twilio_stub.settings_fields()), "+4915100000000", "hello")
    assert twilio_stub.messages == []


def test_sms_wrong_credentials_refused(twilio_stub: TwilioStub) -> None:
    fields = twilio_stub.settings_fields() | {"twilio_auth_token": "wrong"}
    with pytest.raises(MessagingError, match=r"HTTP 401, error 20003"):
        send_sms(settings(**fields), "+4915112345678", "hello")


def test_sms_unreachable_twilio_is_a_clear_error() -> None:
    fields = {"twilio_account_sid": "AC" + "0" * 32, "twilio_auth_token": "t",
              "twilio_from_number": "+15005550006", "twilio_api_url": f"http://127.0.0.1:{free_port()}"}
    with pytest.raises(MessagingError, match="could not be reached"):
        send_sms(settings(**fields), "+4915112345678", "hello")


def test_sms_stalled_twilio_times_out(twilio_stub: TwilioStub) -> None:
    twilio_stub.hold_requests()
    fields = twilio_stub.settings_fields() | {"messaging_timeout": 0.5}
    with pytest.raises(MessagingError, match=r"could not be reached.*timed out"):
        send_sms(settings(**fields), "+4915112345678", "hello")


@pytest.mark.parametrize(
    ("to", "body", "error"),
    [
        ("004915112345678", "hi", "to: '004915112345678' is not an E.164"),
        ("+49 151 1234", "hi", "to: .* is not an E.164"),
        ("+4915112345678", "  ", "body: an SMS needs text"),
        ("+4915112345678", "x" * 1601, "body: 1601 characters"),
    ],
)
def test_sms_bad_input_names_the_field(twilio_stub: TwilioStub, to: str, body: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        send_sms(settings(**twilio_stub.settings_fields()), to, body)
    assert twilio_stub.messages == []


def test_sms_not_configured() -> None:
    with pytest.raises(NotConfiguredError, match="TWILIO_ACCOUNT_SID"):
        send_sms(settings(), "+4915112345678", "hello")


def test_email_with_html_and_attachment_arrives_whole(smtp_server: SmtpStub) -> None:
    pdf = b"%PDF-1.4 fake but binary \x00\xff"
    message_id = send_email(
        settings(**smtp_server.settings_fields()),
        ["risk@broker.test", "dealer@broker.test"],
        "Daily risk summary — 2026-11-21",
        "Your report is attached.",
        html="<p>Your report is <b>attached</b>.</p>",
        attachments=[Attachment("summary.pdf", pdf, "application/pdf")],
    )
    [mail] = smtp_server.wait_for(1)
    assert mail.rcpt_tos == ["risk@broker.test", "dealer@broker.test"]
    assert mail.mail_from == "alerts@veles.test"
    assert mail.message["Message-ID"] == message_id
    assert mail.message["Subject"] == "Daily risk summary — 2026-11-21"
    plain, html = mail.message.get_body(("plain",)), mail.message.get_body(("html",))
    assert plain is not None
    assert html is not None
    assert plain.get_content().strip() == "Your report is attached."
    assert "<b>attached</b>" in html.get_content()
    [attachment] = list(mail.message.iter_attachments())
    assert attachment.get_filename() == "summary.pdf"
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_content() == pdf


def test_email_login(smtp_server_with_login: SmtpStub) -> None:
    fields = smtp_server_with_login.settings_fields()
    send_email(settings(**fields), ["risk@broker.test"], "Hello", "text")
    assert len(smtp_server_with_login.wait_for(1)) == 1
    with pytest.raises(MessagingError, match="login as 'veles' refused: 535"):
        send_email(settings(**fields | {"smtp_password": "nope"}), ["risk@broker.test"], "Hello", "text")


def test_email_refused_recipients_are_named(smtp_server: SmtpStub) -> None:
    smtp_server.refuse = {"gone@broker.test"}
    fields = smtp_server.settings_fields()
    with pytest.raises(MessagingError, match=r"refused for gone@broker.test \(sent to the other"):
        send_email(settings(**fields), ["risk@broker.test", "gone@broker.test"], "Hello", "text")
    assert smtp_server.wait_for(1)[0].rcpt_tos == ["risk@broker.test"]
    with pytest.raises(MessagingError, match=r"every recipient refused: gone@broker\.test"):
        send_email(settings(**fields), ["gone@broker.test"], "Hello", "text")


def test_email_starttls_on_a_server_without_it(smtp_server: SmtpStub) -> None:
    fields = smtp_server.settings_fields() | {"smtp_starttls": True}
    with pytest.raises(MessagingError, match="does not offer what is configured"):
        send_email(settings(**fields), ["risk@broker.test"], "Hello", "text")
    assert smtp_server.messages == []


def test_email_unreachable_server_is_a_clear_error() -> None:
    fields = {"smtp_host": "127.0.0.1", "smtp_port": free_port(), "smtp_starttls": False,
              "messaging_timeout": 2.0}
    with pytest.raises(MessagingError, match=r"e-mail via 127.0.0.1:\d+ failed: .*refused"):
        send_email(settings(**fields), ["risk@broker.test"], "Hello", "text")


@pytest.mark.parametrize(
    ("to", "subject", "attachments", "error"),
    [
        ([], "Hi", [], "to: an e-mail needs at least one recipient"),
        (["not-an-address"], "Hi", [], "to: 'not-an-address' is not an e-mail address"),
        (["a@b.test", "x y@b.test"], "Hi", [], "to: 'x y@b.test'"),
        (["a@b.test"], "Hi\nBcc: evil@x.test", [], "subject: must be one non-empty line"),
        (["a@b.test"], "Hi", [Attachment("../etc/passwd", b"x")], "attachments: '../etc/passwd'"),
        (["a@b.test"], "Hi", [Attachment("a.pdf", b"x", "pdf")], "attachments: 'pdf' is not a MIME"),
    ],
)
def test_email_bad_input_names_the_field(
    smtp_server: SmtpStub, to: list[str], subject: str, attachments: list[Attachment], error: str
) -> None:
    with pytest.raises(ValueError, match=error):
        send_email(settings(**smtp_server.settings_fields()), to, subject, "text", attachments=attachments)
    assert smtp_server.messages == []


def test_email_not_configured() -> None:
    with pytest.raises(NotConfiguredError, match="SMTP_HOST"):
        send_email(settings(), ["risk@broker.test"], "Hello", "text")
