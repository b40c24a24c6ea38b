"""An async MT5 Web API client: one authenticated, kept-alive HTTPS session per manager.

The Web API binds a session to its TCP connection, so the client keeps exactly one connection
(`max_connections=1`) and sends one request at a time on it. When the server answers 401/403, or
the connection breaks or times out, the session is gone: the client authenticates again on a new
connection and repeats the request, with exponential backoff and a bounded number of attempts
(tenacity). Every call has a timeout. TLS certificates are verified by default; `ca_bundle`
trusts a broker's private CA instead of turning verification off.

Authentication is mutual (`auth.py`): a server that cannot return the right `cli_rand_answer` is
refused before anything it says is read. Numbers are read exactly (`numbers.py`): money as
integer minor units of the group's currency, prices and sizes as Decimals.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import TracebackType
from typing import Any

import httpx
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from veles.mt5.webapi import numbers, retcodes
from veles.mt5.webapi.auth import (
    AuthProtocolError,
    new_cli_rand,
    password_hash,
    srv_rand_answer,
    verify_cli_rand_answer,
)
from veles.mt5.webapi.errors import (
    AuthError,
    ProtocolError,
    RightsError,
    ServerNotTrusted,
    SessionLost,
    WebApiError,
)

REFUSED = "the server refused the manager"
WEBAPI_VERSION = 484  # the lowest version the documentation accepts
AGENT = "veles"

# What each right-guarded request reads, for "the manager account lacks the right to ...".
READS = {
    "symbol": "read symbols",
    "group": "read groups",
    "user": "read users",
    "position": "read positions",
}


@dataclass(frozen=True)
class WebApiSettings:
    """Where and as whom to connect."""

    url: str  # https://host:port
    login: int
    password: str = field(repr=False)
    ca_bundle: str | None = None  # PEM file of a private CA; None: the system's trust store
    timeout_s: float = 10.0
    attempts: int = 3  # per request, counting re-authentications after a lost session
    backoff_s: float = 0.5  # first wait between attempts, doubling, capped at 8 s
    agent: str = AGENT


@dataclass(frozen=True, slots=True)
class WebSymbol:
    """A symbol's settings the risk core needs."""

    name: str
    digits: int
    calc_mode: int
    contract_size: Decimal
    tick_size: Decimal
    tick_value: Decimal
    currency_base: str
    currency_profit: str
    currency_margin: str


@dataclass(frozen=True, slots=True)
class WebGroup:
    """A group's currency and margin settings."""

    name: str
    currency: str
    currency_digits: int
    margin_mode: int
    margin_so_mode: int
    margin_call: Decimal
    margin_stop_out: Decimal


@dataclass(frozen=True, slots=True)
class WebUser:
    """A client account: money in integer minor units of its group's currency."""

    login: int
    group: str
    leverage: int
    balance: int
    credit: int


@dataclass(frozen=True, slots=True)
class WebPosition:
    """An open position: volume in 1/10^8 lot (`VolumeExt`), swap in minor units."""

    ticket: int
    login: int
    symbol: str
    buy: bool
    volume_ext: int
    price_open: Decimal
    swap: int


def _tls(ca_bundle: str | None) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca_bundle) if ca_bundle else ssl.create_default_context()


class WebApiClient:
    """One manager session. Use as `async with WebApiClient(settings) as client:`."""

    def __init__(self, settings: WebApiSettings) -> None:
        self.settings = settings
        self.version_access = ""
        self.authentications = 0
        self.bytes_received = 0  # answer bodies, for the bench (bytes/s of a connection)
        self._pw_hash = password_hash(settings.password)
        self._authenticated = False
        self._lock = asyncio.Lock()
        self._http = httpx.AsyncClient(
            base_url=settings.url.rstrip("/"),
            timeout=httpx.Timeout(settings.timeout_s),
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            verify=_tls(settings.ca_bundle),
            follow_redirects=False,
        )

    async def __aenter__(self) -> WebApiClient:
        await self.connect()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connection (the server drops the session with it)."""
        await self._http.aclose()

    async def connect(self) -> None:
        """Authenticate (with retries on a lost connection); raises AuthError on refusal."""
        async with self._lock:
            async for attempt in self._retrying():
                with attempt:
                    await self._authenticate()

    # -- requests ----------------------------------------------------------------------------------

    async def request(self, path: str, params: Mapping[str, str | int] | None = None) -> dict[str, Any]:
        """GET `path` in the session; returns the JSON body with retcode 0. A lost session is
        authenticated again and the request repeated, up to `attempts` times."""
        step = path.removeprefix("/api/")
        async with self._lock:
            async for attempt in self._retrying():
                with attempt:
                    if not self._authenticated:
                        await self._authenticate()
                    body = await self._get(step, path, params)
                    code = self._retcode(step, body)
                    if code.code == retcodes.ERR_PERMISSIONS:
                        what = READS.get(step.split("/")[0], f"call {step}")
                        scope = (params or {}).get("group")
                        on = f" of group {scope}" if scope else ""
                        raise RightsError(step, f"the manager account lacks the right to {what}{on}", code)
                    if not code.ok:
                        raise WebApiError(step, retcodes.ADVICE.get(code.code, "the server refused"), code)
                    return body
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

    async def ping(self) -> None:
        """`/api/test/access`: keeps the session alive (the documentation suggests every ~20 s)."""
        await self.request("/api/test/access")

    async def answer(self, path: str, params: Mapping[str, str | int] | None = None) -> Any:
        """The `answer` member of a successful request."""
        body = await self.request(path, params)
        if "answer" not in body:
            raise ProtocolError(path.removeprefix("/api/"), "the answer has no 'answer' member")
        return body["answer"]

    async def symbols(self) -> list[WebSymbol]:
        """Every symbol, by `symbol/total` and `symbol/next`."""
        total = _total("symbol/total", await self.answer("/api/symbol/total"))
        records = [await self.answer("/api/symbol/next", {"index": i}) for i in range(total)]
        return [_parse("symbol/next", _symbol, r) for r in records]

    async def groups(self) -> list[WebGroup]:
        """Every group the manager may read, by `group/total` and `group/next`."""
        total = _total("group/total", await self.answer("/api/group/total"))
        records = [await self.answer("/api/group/next", {"index": i}) for i in range(total)]
        return [_parse("group/next", _group, r) for r in records]

    async def users(self, groups: list[WebGroup], mask: str = "*") -> list[WebUser]:
        """Accounts of the groups matching `mask`; money in minor units of each group's currency."""
        digits = {g.name: g.currency_digits for g in groups}
        records = await self.answer("/api/user/get_batch", {"group": mask})
        step = "user/get_batch"
        return [_parse(step, lambda r: _user(r, digits), r) for r in _list(step, records)]

    async def positions(self, mask: str = "*") -> list[WebPosition]:
        """Open positions of the groups matching `mask` (`position/get_batch`)."""
        records = await self.answer("/api/position/get_batch", {"group": mask})
        return [_parse("position/get_batch", _position, r) for r in _list("position/get_batch", records)]

    # -- internals ---------------------------------------------------------------------------------

    def _retrying(self) -> AsyncRetrying:
        s = self.settings
        return AsyncRetrying(
            stop=stop_after_attempt(max(1, s.attempts)),
            wait=wait_exponential(multiplier=s.backoff_s, max=8.0),
            retry=retry_if_exception_type(SessionLost),
            reraise=True,
        )

    async def _authenticate(self) -> None:
        s = self.settings
        self._authenticated = False
        start = await self._get("auth/start", "/api/auth/start", {
            "version": WEBAPI_VERSION, "agent": s.agent, "login": s.login, "type": "manager"})
        code = self._retcode("auth/start", start)
        if not code.ok:
            raise AuthError("auth/start", retcodes.ADVICE.get(code.code, REFUSED), code)
        try:
            proof = srv_rand_answer(s.password, start.get("srv_rand"))
        except AuthProtocolError as exc:
            raise ProtocolError("auth/start", str(exc)) from None
        cli_rand = new_cli_rand()
        reply = await self._get("auth/answer", "/api/auth/answer",
                                {"srv_rand_answer": proof, "cli_rand": cli_rand.hex()})
        code = self._retcode("auth/answer", reply)
        if not code.ok:
            raise AuthError("auth/answer", retcodes.ADVICE.get(code.code, REFUSED), code)
        if not verify_cli_rand_answer(self._pw_hash, cli_rand, reply.get("cli_rand_answer")):
            raise ServerNotTrusted(
                "auth/answer",
                "the server could not prove it knows the manager password (wrong cli_rand_answer): refused",
            )
        self.version_access = str(start.get("version_access", ""))
        self._authenticated = True
        self.authentications += 1

    async def _get(self, step: str, path: str, params: Mapping[str, str | int] | None) -> dict[str, Any]:
        try:
            response = await self._http.get(path, params=params)
        except httpx.TimeoutException:
            self._authenticated = False
            raise SessionLost(step, f"no answer within {self.settings.timeout_s:g} s") from None
        except httpx.TransportError as exc:
            self._authenticated = False
            if isinstance(exc, httpx.ConnectError):
                if "CERTIFICATE" in str(exc).upper():  # never retried: it will not fix itself
                    untrusted = f"TLS certificate not trusted ({exc}): set the CA bundle"
                    raise WebApiError(step, untrusted) from None
                raise SessionLost(step, f"cannot connect: {exc}") from None
            raise SessionLost(step, f"connection lost: {type(exc).__name__}: {exc}") from None
        self.bytes_received += len(response.content)
        if response.status_code in (401, 403):
            self._authenticated = False
            raise SessionLost(step, f"HTTP {response.status_code}: no session (or no Web API access)")
        if response.status_code != 200:
            raise WebApiError(step, f"HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise ProtocolError(step, "the answer is not JSON") from None
        if not isinstance(body, dict):
            raise ProtocolError(step, "the answer is not a JSON object")
        return body

    @staticmethod
    def _retcode(step: str, body: Mapping[str, Any]) -> retcodes.Retcode:
        try:
            return retcodes.parse(body.get("retcode"))
        except ValueError as exc:
            raise ProtocolError(step, str(exc)) from None


def _total(step: str, value: object) -> int:
    """`{"total": "N"}`, N not negative; anything else is a protocol error, not a crash."""
    try:
        if not isinstance(value, dict):
            raise ValueError("expected {'total': N}")
        total = numbers.integer(value.get("total"), "total")
    except ValueError as exc:
        raise ProtocolError(step, str(exc)) from None
    if total < 0:
        raise ProtocolError(step, f"negative total {total}")
    return total


def _list(step: str, value: object) -> list[Any]:
    if not isinstance(value, list):
        raise ProtocolError(step, "expected a list of records")
    return value


def _parse(step: str, parse: Any, record: object) -> Any:
    if not isinstance(record, dict):
        raise ProtocolError(step, "expected a JSON object record")
    try:
        return parse(record)
    except (KeyError, ValueError) as exc:
        raise ProtocolError(step, f"bad record: {exc}") from None


def _str(record: Mapping[str, Any], key: str) -> str:
    value = record[key]
    if not isinstance(value, str):
        raise ValueError(f"{key} is not a string")
    return value


def _symbol(r: Mapping[str, Any]) -> WebSymbol:
    return WebSymbol(
        name=_str(r, "Symbol"),
        digits=numbers.integer(r["Digits"], "Digits"),
        calc_mode=numbers.integer(r["CalcMode"], "CalcMode"),
        contract_size=numbers.decimal(r["ContractSize"], "ContractSize"),
        tick_size=numbers.decimal(r["TickSize"], "TickSize"),
        tick_value=numbers.decimal(r["TickValue"], "TickValue"),
        currency_base=_str(r, "CurrencyBase"),
        currency_profit=_str(r, "CurrencyProfit"),
        currency_margin=_str(r, "CurrencyMargin"),
    )


def _group(r: Mapping[str, Any]) -> WebGroup:
    return WebGroup(
        name=_str(r, "Group"),
        currency=_str(r, "Currency"),
        currency_digits=numbers.integer(r["CurrencyDigits"], "CurrencyDigits"),
        margin_mode=numbers.integer(r["MarginMode"], "MarginMode"),
        margin_so_mode=numbers.integer(r["MarginSOMode"], "MarginSOMode"),
        margin_call=numbers.decimal(r["MarginCall"], "MarginCall"),
        margin_stop_out=numbers.decimal(r["MarginStopOut"], "MarginStopOut"),
    )


def _user(r: Mapping[str, Any], digits: Mapping[str, int]) -> WebUser:
    group = _str(r, "Group")
    if group not in digits:
        raise ValueError(f"user {r.get('Login')} is in group {group}, which the manager cannot read")
    d = digits[group]
    return WebUser(
        login=numbers.integer(r["Login"], "Login"),
        group=group,
        leverage=numbers.integer(r["Leverage"], "Leverage"),
        balance=numbers.minor_units(r["Balance"], d, "Balance"),
        credit=numbers.minor_units(r["Credit"], d, "Credit"),
    )


def _position(r: Mapping[str, Any]) -> WebPosition:
    action = numbers.integer(r["Action"], "Action")
    if action not in (0, 1):
        raise ValueError(f"position {r.get('Position')} has Action {action}, not buy (0) or sell (1)")
    return WebPosition(
        ticket=numbers.integer(r["Position"], "Position"),
        login=numbers.integer(r["Login"], "Login"),
        symbol=_str(r, "Symbol"),
        buy=action == 0,
        volume_ext=numbers.integer(r["VolumeExt"], "VolumeExt"),
        price_open=numbers.decimal(r["PriceOpen"], "PriceOpen"),
        swap=numbers.minor_units(r["Storage"], _digits(r), "Storage"),
    )


def _digits(r: Mapping[str, Any]) -> int:
    return numbers.integer(r["DigitsCurrency"], "DigitsCurrency")
