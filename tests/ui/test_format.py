"""Numbers on screen: fixed decimals, a dash for missing values, colour by sign and state."""

from __future__ import annotations

import math

from veles_ui.format import DASH, account_view, money, percent, price, sign_color, state_color


def test_money_and_percent_have_fixed_decimals_and_a_dash_when_missing() -> None:
    assert money(1234567.891) == "1,234,567.89"
    assert money(-0.5) == "-0.50"
    assert money(None) == DASH
    assert money(math.nan) == DASH
    assert percent(245.3149) == "245.31%"
    assert percent(None) == DASH  # no margin in use: no margin level


def test_prices_keep_their_symbols_digits() -> None:
    assert price(2338.4, 2) == "2,338.40"  # XAUUSD
    assert price(1.085123, 5) == "1.08512"  # EURUSD
    assert price(151.2, 3) == "151.200"  # USDJPY
    assert price(1.0851, None) == "1.08510"  # no specification known: five places


def test_colours_follow_sign_and_state() -> None:
    assert (sign_color(1.0), sign_color(-1.0), sign_color(0.0), sign_color(None)) == (
        "grass", "tomato", "gray", "gray"
    )
    assert (state_color("ok"), state_color("margin_call"), state_color("stop_out")) == (
        "grass", "amber", "tomato"
    )


def test_account_view_formats_every_column_and_links_the_login() -> None:
    row = {"login": 100042, "group": "real\\pro", "name": "Anna Adler", "country": "DE", "server": "conn-3",
           "book": "A", "currency": "EUR", "leverage": 500.0,
           "balance": 1000.0,
           "equity": 950.456,
           "profit": -49.544, "margin": 200.0, "margin_level": 475.228, "drawdown": 0.0512,
           "risk_score": 12.34, "state": "margin_call"}
    assert account_view(row) == {
        "login": "100042", "href": "/accounts/100042", "group": "real\\pro", "name": "Anna Adler",
        "country": "DE", "server": "conn-3", "book": "A", "currency": "EUR",
        "leverage": "1:500", "balance": "1,000.00", "equity": "950.46", "profit": "-49.54",
        "profit_color": "tomato",
        "margin": "200.00", "margin_level": "475.23%", "drawdown": "5.12%", "risk_score": "12.3",
        "state": "margin call", "state_color": "amber",
    }


def test_account_view_dashes_what_the_feed_does_not_know() -> None:
    """A server whose user records carry no name or country (or a row from before they were
    published) shows a dash, not an empty cell."""
    row = {"login": 7, "group": "g", "book": "B", "currency": "USD", "leverage": 100, "balance": 0.0,
           "equity": 0.0, "profit": 0.0, "margin": 0.0, "margin_level": None, "drawdown": 0.0,
           "risk_score": 0.0, "state": "ok", "name": "", "country": ""}
    view = account_view(row)
    assert (view["name"], view["country"], view["server"]) == (DASH, DASH, DASH)


def test_account_view_names_the_server_where_it_is_named() -> None:
    """The server column shows the connection's name (its trade server), its id where unnamed."""
    row = {"login": 7, "group": "g", "book": "B", "currency": "USD", "leverage": 100, "balance": 0.0,
           "equity": 0.0, "profit": 0.0, "margin": 0.0, "margin_level": None, "drawdown": 0.0,
           "risk_score": 0.0, "state": "ok", "server": "conn-3"}
    assert account_view(row, {"conn-3": "https://mt5.broker.com:443"})["server"] == "https://mt5.broker.com:443"
    assert account_view(row, {"conn-4": "elsewhere"})["server"] == "conn-3"
