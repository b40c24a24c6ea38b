"""Which address is the client: X-Forwarded-For only counts when a trusted proxy sent it."""

from __future__ import annotations

import pytest

from veles.services.ratelimit import client_address, parse_trusted_proxies

TRUSTED = parse_trusted_proxies("10.0.0.0/8, 192.0.2.10 ,2001:db8::/32")


@pytest.mark.parametrize(("peer", "forwarded", "client"), [
    ("198.51.100.7", None, "198.51.100.7"),  # no proxy
    ("198.51.100.7", "203.0.113.1", "198.51.100.7"),  # an untrusted peer cannot claim another address
    ("10.1.2.3", None, "10.1.2.3"),  # a trusted peer without the header is itself the client
    ("10.1.2.3", "203.0.113.1", "203.0.113.1"),
    ("10.1.2.3", "6.6.6.6, 203.0.113.1", "203.0.113.1"),  # what the client wrote itself is ignored
    ("10.1.2.3", "203.0.113.1, 10.9.9.9, 192.0.2.10", "203.0.113.1"),  # through a chain of proxies
    ("10.1.2.3", "not-an-ip, 10.9.9.9", "10.9.9.9"),  # garbage: the last good hop
    ("10.1.2.3", "10.9.9.9", "10.9.9.9"),  # every hop trusted: the outermost one
    ("2001:db8::1", "2001:4860::8888", "2001:4860::8888"),
])
def test_client_address(peer: str, forwarded: str | None, client: str) -> None:
    assert client_address(peer, forwarded, TRUSTED) == client


def test_nothing_is_trusted_by_default() -> None:
    assert parse_trusted_proxies("") == ()
    assert client_address("10.1.2.3", "203.0.113.1", ()) == "10.1.2.3"


def test_a_bad_entry_is_refused_naming_the_setting() -> None:
    with pytest.raises(ValueError, match=r"TRUSTED_PROXIES: '10\.0\.0\.300' is not an IP address"):
        parse_trusted_proxies("10.0.0.1, 10.0.0.300")
