"""Notification settings: where each severity of alert reaches the signed-in user, when e-mail and
SMS stay quiet, and how long further alerts wait to go out as one digest; and the user's phone and
SMS sign-in (changed only with the current password)."""

from __future__ import annotations

import reflex as rx

from veles_ui.components.feedback import error_callout, notice_callout
from veles_ui.components.nav import top_nav
from veles_ui.state.alert_bell import AlertBellState as Bell
from veles_ui.state.notifications import CHANNELS, SEVERITIES, choice
from veles_ui.state.notifications import NotificationsState as S

_KEY = S.revision.to_string()  # inputs are made again, with the stored values, when it changes
_CHANNEL_LABELS = {"portal": "Portal", "email": "E-mail", "sms": "SMS"}


def _error(field: str) -> rx.Component:
    """The refusal of the last save, when it named `field`."""
    return rx.cond(S.error_field == field, rx.text(S.error, size="1", color_scheme="tomato", max_width="22em",
                                                   id=f"error-{field.replace('.', '-')}", role="alert"))


def _severity_row(severity: str) -> rx.Component:
    boxes = [
        rx.table.cell(rx.checkbox(
            name=choice(severity, channel), id=f"pref-{severity}-{channel}",
            default_checked=S.chosen.contains(choice(severity, channel)), key=_KEY,
            custom_attrs={"aria-label": f"{severity} alerts by {_CHANNEL_LABELS[channel]}"},
        ))
        for channel in CHANNELS
    ]
    return rx.table.row(
        rx.table.row_header_cell(rx.vstack(rx.text(severity.capitalize()), _error(f"channels.{severity}"),
                                           spacing="1")),
        *boxes,
    )


def _field(name: str, label: str, control: rx.Component, hint: str = "") -> rx.Component:
    return rx.vstack(
        rx.text(label, size="2", weight="medium", as_="label", html_for=f"pref-{name}"),
        control,
        *([rx.text(hint, size="1", color_scheme="gray")] if hint else []),
        _error(name),
        spacing="1",
    )


def _input(name: str, value: rx.Var[str], **props: object) -> rx.Component:
    return rx.input(name=name, id=f"pref-{name}", default_value=value, key=_KEY, **props)


def notifications_page() -> rx.Component:
    """Every signed-in user edits their own; nothing here touches anyone else's."""
    return rx.vstack(
        top_nav(),
        rx.heading("Notification settings", size="5"),
        rx.text("Portal alerts are always kept in your inbox; e-mail and SMS follow the quiet hours "
                "and the digest window below.", color_scheme="gray", size="2"),
        rx.form(
            rx.vstack(
                rx.table.root(
                    rx.table.header(rx.table.row(
                        rx.table.column_header_cell("Severity"),
                        *(rx.table.column_header_cell(_CHANNEL_LABELS[c]) for c in CHANNELS),
                    )),
                    rx.table.body(*(_severity_row(s) for s in SEVERITIES)),
                    id="pref-channels",
                    custom_attrs={"data-revision": _KEY},  # 0 until the stored values arrived
                ),
                rx.cond(
                    S.sms_phone != "",
                    rx.text("SMS alerts go to ", rx.code(S.sms_phone), ".", size="2", id="pref-sms-phone"),
                    rx.text("SMS needs a verified phone: set your phone and sign in once with an SMS code.",
                            size="2", color_scheme="gray", id="pref-sms-phone"),
                ),
                rx.flex(
                    _field("time_zone", "Time zone (IANA)", _input("time_zone", S.time_zone, width="14em",
                                                                   placeholder="Europe/London")),
                    _field("quiet_start", "Quiet from", _input("quiet_start", S.quiet_start, type="time")),
                    _field("quiet_end", "Quiet until", _input("quiet_end", S.quiet_end, type="time"),
                           "may be the next morning"),
                    _field("digest_minutes", "Digest window (minutes)",
                           _input("digest_minutes", S.digest_minutes, type="number", width="8em")),
                    spacing="4",
                    wrap="wrap",
                ),
                rx.checkbox("Critical alerts ignore quiet hours", name="critical_overrides_quiet",
                            default_checked=S.critical_overrides_quiet, key=_KEY,
                            id="pref-critical-override"),
                rx.button("Save", type="submit", id="pref-save"),
                spacing="3",
            ),
            on_submit=S.save,
            reset_on_submit=False,
        ),
        rx.heading("Desktop alerts", size="4"),
        rx.hstack(
            rx.switch(checked=Bell.desktop, on_change=Bell.choose_desktop, id="desktop-notifications"),
            rx.text("A desktop notification for each new critical alert (your browser asks for its "
                    "permission); the portal also sounds a tone.", size="2", as_="label",
                    html_for="desktop-notifications"),
            align="center",
            spacing="2",
        ),
        rx.cond(Bell.desktop_notice != "",
                rx.callout(Bell.desktop_notice, icon="info", color_scheme="amber", id="desktop-notice")),
        rx.heading("Phone and SMS sign-in", size="4"),
        rx.form(
            rx.vstack(
                rx.flex(
                    _field("phone", "Phone (E.164, e.g. +4915112345678; empty removes it)",
                           _input("phone", S.phone, width="16em", type="tel")),
                    _field("current_password", "Current password",
                           rx.input(name="current_password", id="pref-current_password", type="password",
                                    required=True, auto_complete="current-password", width="16em")),
                    spacing="4",
                    wrap="wrap",
                ),
                rx.checkbox("Ask for an SMS code at every sign-in", name="sms_sign_in", id="pref-sms-sign-in",
                            default_checked=S.sms_sign_in, key=_KEY),
                rx.text("A new number is used for SMS alerts once you have signed in with a code sent to it.",
                        size="1", color_scheme="gray"),
                rx.button("Save phone", type="submit", id="pref-save-phone"),
                spacing="3",
            ),
            on_submit=S.save_phone,
            reset_on_submit=True,
        ),
        error_callout(rx.cond(S.error_field == "", S.error, ""), "pref-error"),
        notice_callout(S.notice, "pref-notice"),
        padding="1em",
        spacing="3",
        width="100%",
    )
