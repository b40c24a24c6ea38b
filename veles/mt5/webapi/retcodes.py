"""MT5 return codes as the Web API sends them: a string `"<code> <text>"`, e.g. `"0 Done"`.

Codes are MetaQuotes' MT_RET_* values (the Manager/Web API headers): a handful matter to a
read-only connector, and each gets a sentence a broker's administrator can act on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

OK = 0
ERR_PARAMS = 3
ERR_PERMISSIONS = 8
ERR_TIMEOUT = 9
ERR_NOTFOUND = 13
AUTH_CLIENT_INVALID = 1000
AUTH_ACCOUNT_INVALID = 1001
AUTH_CLIENT_OLD = 1010
AUTH_MANAGER_IPBLOCK = 1012
USR_INVALID_PASSWORD = 3006

TEXTS = {
    OK: "Done",
    ERR_PARAMS: "Invalid parameters",
    ERR_PERMISSIONS: "Not enough permissions",
    ERR_TIMEOUT: "Operation timeout",
    ERR_NOTFOUND: "Not found",
    AUTH_CLIENT_INVALID: "Invalid terminal type",
    AUTH_ACCOUNT_INVALID: "Invalid account",
    AUTH_CLIENT_OLD: "Client has old version",
    AUTH_MANAGER_IPBLOCK: "IP address is not allowed for the manager",
    USR_INVALID_PASSWORD: "Invalid account password",
}

# What the broker's administrator should do about a code, for error messages.
ADVICE = {
    ERR_PERMISSIONS: "the manager account lacks the right for this request",
    AUTH_ACCOUNT_INVALID: "check the manager login (and that it has Web API access)",
    AUTH_CLIENT_OLD: "the server refuses this Web API version",
    AUTH_MANAGER_IPBLOCK: "allow Veles' IP address in the manager account's IP allow-list",
    USR_INVALID_PASSWORD: "wrong manager password (some set-ups need a separate API password)",
    ERR_TIMEOUT: "the authentication answer came too late (10 s window)",
}

_PATTERN = re.compile(r"^\s*(-?\d+)(?:\s+(.*))?$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Retcode:
    """A parsed retcode."""

    code: int
    text: str

    @property
    def ok(self) -> bool:
        """MT5 reports success as 0 (MT_RET_OK)."""
        return self.code == OK

    def __str__(self) -> str:
        return f"{self.code} {self.text}".strip()


def make(code: int) -> str:
    """The wire form a server sends for `code`."""
    return f"{code} {TEXTS.get(code, 'Error')}"


def parse(value: object) -> Retcode:
    """Parse the wire form; raises ValueError for anything else (a missing or mangled retcode is
    a protocol error, never success)."""
    if not isinstance(value, str):
        raise ValueError(f"retcode missing or not a string: {value!r}")
    match = _PATTERN.match(value)
    if match is None:
        raise ValueError(f"retcode is not '<code> <text>': {value[:60]!r}")
    return Retcode(int(match.group(1)), (match.group(2) or "").strip())
