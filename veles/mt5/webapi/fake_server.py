"""A protocol-faithful fake MT5 Web API server, fed by the simulated broker, for tests.

It is a real ASGI application (Starlette, already here through FastAPI) that a test serves with
uvicorn on a free localhost port, so the client goes through real HTTP, real keep-alive
connections and real timeouts. What it enforces, as MetaQuotes documents the Web API:

* `/api/auth/start?version&agent&login&type=manager` → `srv_rand`; `/api/auth/answer` within the
  window (10 s) with `srv_rand_answer = MD5(password hash ‖ srv_rand)`; it answers the client's
  `cli_rand` with `cli_rand_answer` (mutual authentication). An unknown login gets a `srv_rand`
  too and fails at the answer like a wrong password, so logins cannot be probed.
* The session belongs to the TCP connection (the client's address and port): a new connection
  authenticates again; a command without a session gets HTTP 403.
* Per-manager rights (`symbols`, `groups`, `users`, `accounts`, `positions`) and group masks, and an IP
  allow-list; refusals carry MT5 retcodes (`8 Not enough permissions`, `1012 ...`).
* Every number is a string (`records.py`).

Faults (`Faults`) are settings a test flips while the server runs: the next N answers as HTTP
403, cut off mid-body (a dropped connection), not JSON; every answer delayed; every session
forgotten (expired); or an impostor that cannot prove `cli_rand_answer`.
"""

from __future__ import annotations

import asyncio
import fnmatch
import ipaddress
import math
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from veles.mt5.webapi import retcodes
from veles.mt5.webapi.auth import AuthProtocolError, answer, password_hash, rand_from_hex
from veles.mt5.webapi.fake_feed import TradeFeed
from veles.mt5.webapi.records import (
    account_record,
    deal_record,
    group_name,
    group_record,
    position_record,
    symbol_record,
    tick_record,
    user_record,
)
from veles.risk.account import AccountFigures
from veles.risk.events import AccountSnapshot, Deal, DealKind
from veles.risk.instruments import SymbolSpec

MIN_VERSION = 484
AUTH_WINDOW_S = 10.0
VERSION_ACCESS = "1290"
ALL_RIGHTS = frozenset({"symbols", "groups", "users", "accounts", "positions", "ticks", "deals", "trade"})
# trade/balance's `type`: MT5's deal types for money moved in or out (DEAL_BALANCE, DEAL_CREDIT).
MONEY_TYPES = {2: DealKind.BALANCE, 3: DealKind.CREDIT}
# Moves money on an account and returns the deal it booked (KeyError: no such login).
MoneyOperation = Callable[[int, DealKind, float, str], Deal]


class Source:
    """What the fake serves: a gateway's symbols and account snapshots (the simulator's, or any
    `Gateway`), read under a lock because a test may advance the simulator meanwhile; and, when
    given, the server's own account figures (`SimulatedBroker.figures`) for
    `user/account/get_batch`."""

    def __init__(self, symbols: Callable[[], Sequence[SymbolSpec]],
                 accounts: Callable[[], Sequence[AccountSnapshot]],
                 figures: Callable[[], Sequence[AccountFigures]] | None = None) -> None:
        self._symbols = symbols
        self._accounts = accounts
        self._figures = figures
        self.lock = threading.Lock()

    def account_figures(self) -> tuple[tuple[AccountSnapshot, ...], dict[int, AccountFigures]]:
        """Every account and the server's figures of each, read together (one lock), so a record
        never mixes two moments. Empty figures when the source computes none."""
        with self.lock:
            accounts = tuple(self._accounts())
            figures = {f.login: f for f in self._figures()} if self._figures is not None else {}
            return accounts, figures

    def snapshot(self) -> tuple[dict[str, SymbolSpec], tuple[AccountSnapshot, ...]]:
        """Symbols by name and every account, as of now."""
        with self.lock:
            return {s.name: s for s in self._symbols()}, tuple(self._accounts())


@dataclass(frozen=True)
class Manager:
    """A manager account as the server configures it."""

    login: int
    password: str
    rights: frozenset[str] = ALL_RIGHTS
    groups: tuple[str, ...] = ("*",)  # group masks this manager may read
    ip_allow: tuple[str, ...] = ("127.0.0.0/8", "::1/128")

    def allows_ip(self, host: str) -> bool:
        """Whether `host` is in the allow-list."""
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in ipaddress.ip_network(net) for net in self.ip_allow)

    def may_read(self, group: str) -> bool:
        """Whether the manager's group masks cover `group`."""
        return matches(group, self.groups)


@dataclass
class Faults:
    """Misbehaviour on demand. Counters count down one per answered request."""

    forbid: int = 0  # next N requests answer HTTP 403
    drop: int = 0  # next N answers are cut off mid-body (the connection closes)
    malformed: int = 0  # next N answers are not JSON
    delay_s: float = 0.0  # every answer waits this long
    impostor: bool = False  # cli_rand_answer is not derived from the password
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def take(self, name: str) -> bool:
        """Consume one `name` fault if any is pending."""
        with self._lock:
            left = getattr(self, name)
            if left > 0:
                setattr(self, name, left - 1)
                return True
            return False


@dataclass
class _Pending:
    manager: Manager
    srv_rand: bytes
    issued: float


def matches(group: str, masks: Iterable[str]) -> bool:
    """MT5 group masks: comma-separated, `*` wildcard, `!` excludes (`real*,!real\\test`)."""
    included = False
    for mask in masks:
        mask = mask.strip()
        if not mask:
            continue
        if mask.startswith("!"):
            if fnmatch.fnmatchcase(group.lower(), mask[1:].lower()):
                return False
        elif fnmatch.fnmatchcase(group.lower(), mask.lower()):
            included = True
    return included


class FakeWebApi:
    """The fake server's state and its ASGI app (`app`)."""

    def __init__(
        self,
        source: Source,
        managers: Iterable[Manager],
        *,
        clock: Callable[[], float] = time.monotonic,
        auth_window_s: float = AUTH_WINDOW_S,
        feed: TradeFeed | None = None,
        money: MoneyOperation | None = None,
    ) -> None:
        """`money`, when given, serves `trade/balance` (a simulated server's deposits and credit)."""
        self.source = source
        self.feed = feed
        self.money = money
        self.managers = {m.login: m for m in managers}
        self.faults = Faults()
        self.clock = clock
        self.auth_window_s = auth_window_s
        self._pending: dict[tuple[str, int], _Pending] = {}
        self._sessions: dict[tuple[str, int], Manager] = {}
        self.requests = 0
        self.paths: dict[str, int] = {}  # requests per path, for tests and the bench
        self.auth_starts = 0
        self._symbols_cache: dict[str, SymbolSpec] | None = None  # symbols never change in a session
        routes = [
            Route("/api/auth/start", self._auth_start),
            Route("/api/auth/answer", self._auth_answer),
            Route("/api/test/access", self._command(None, self._test_access)),
            Route("/api/symbol/total", self._command("symbols", self._symbol_total)),
            Route("/api/symbol/next", self._command("symbols", self._symbol_next)),
            Route("/api/symbol/get", self._command("symbols", self._symbol_get)),
            Route("/api/group/total", self._command("groups", self._group_total)),
            Route("/api/group/next", self._command("groups", self._group_next)),
            Route("/api/group/get", self._command("groups", self._group_get)),
            Route("/api/user/logins", self._command("users", self._user_logins)),
            Route("/api/user/get_batch", self._command("users", self._user_get_batch)),
            Route("/api/user/account/get_batch", self._command("accounts", self._account_get_batch)),
            Route("/api/position/get_batch", self._command("positions", self._position_get_batch)),
        ]
        routes += self._feed_routes()
        if money is not None:
            routes.append(Route("/api/trade/balance", self._command("trade", self._trade_balance)))
        self._app = Starlette(routes=routes)

    # -- ASGI and faults ---------------------------------------------------------------------------

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI entry point: faults wrap every HTTP answer."""
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        self.requests += 1
        if len(self.paths) < 64 or scope["path"] in self.paths:  # bounded: a scanner's paths do not pile up
            self.paths[scope["path"]] = self.paths.get(scope["path"], 0) + 1
        if self.faults.delay_s > 0:
            await asyncio.sleep(self.faults.delay_s)
        if self.faults.take("forbid"):
            await Response("403 Forbidden", status_code=403)(scope, receive, send)
            return
        if self.faults.take("drop"):
            # Promise a body, send part of it, then fail: uvicorn closes the connection mid-answer.
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", b"64")]})
            await send({"type": "http.response.body", "body": b'{"retcode":"0 Do', "more_body": True})
            raise ConnectionAbortedError("fault injected: connection dropped")
        if self.faults.take("malformed"):
            await Response('{"retcode":"0 Done","answer":[{"Login":', media_type="application/json")(
                scope, receive, send)
            return
        await self._app(scope, receive, send)

    def expire_sessions(self) -> None:
        """Forget every session, as a server restart or session timeout does."""
        self._sessions.clear()
        self._pending.clear()

    # -- authentication ----------------------------------------------------------------------------

    @staticmethod
    def _peer(request: Request) -> tuple[str, int]:
        client = request.client
        return (client.host, client.port) if client else ("", 0)

    async def _auth_start(self, request: Request) -> Response:
        q = request.query_params
        self.auth_starts += 1
        try:
            version = int(q.get("version", ""))
            login = int(q.get("login", ""))
        except ValueError:
            return _retcode(retcodes.ERR_PARAMS)
        agent = q.get("agent", "")
        if not agent or " " in agent:
            return _retcode(retcodes.ERR_PARAMS)
        if q.get("type", "manager") != "manager":
            return _retcode(retcodes.AUTH_CLIENT_INVALID)
        if version < MIN_VERSION:
            return _retcode(retcodes.AUTH_CLIENT_OLD)
        peer = self._peer(request)
        manager = self.managers.get(login)
        if manager is not None and not manager.allows_ip(peer[0]):
            return _retcode(retcodes.AUTH_MANAGER_IPBLOCK)
        srv_rand = secrets.token_bytes(16)
        # An unknown login is challenged like a known one and fails at the answer (no probing).
        placeholder = Manager(login, secrets.token_hex(16), frozenset(), ())
        self._sessions.pop(peer, None)
        self._pending[peer] = _Pending(manager or placeholder, srv_rand, self.clock())
        return JSONResponse({"retcode": retcodes.make(retcodes.OK), "version_access": VERSION_ACCESS,
                             "srv_rand": srv_rand.hex()})

    async def _auth_answer(self, request: Request) -> Response:
        q = request.query_params
        peer = self._peer(request)
        pending = self._pending.pop(peer, None)
        if pending is None:
            return _retcode(retcodes.ERR_PARAMS)  # no auth/start on this connection
        if self.clock() - pending.issued > self.auth_window_s:
            return _retcode(retcodes.ERR_TIMEOUT)
        try:
            cli_rand = rand_from_hex(q.get("cli_rand"), "cli_rand")
        except AuthProtocolError:
            return _retcode(retcodes.ERR_PARAMS)
        pw_hash = password_hash(pending.manager.password)
        expected = answer(pw_hash, pending.srv_rand)
        given = (q.get("srv_rand_answer") or "").lower()
        if not secrets.compare_digest(expected, given):
            return _retcode(retcodes.USR_INVALID_PASSWORD)
        self._sessions[peer] = pending.manager
        proof_key = password_hash(secrets.token_hex(8)) if self.faults.impostor else pw_hash
        proof = answer(proof_key, cli_rand)
        return JSONResponse({"retcode": retcodes.make(retcodes.OK), "cli_rand_answer": proof})

    # -- commands ----------------------------------------------------------------------------------

    def _command(
        self, right: str | None, handler: Callable[[Manager, Request], Response]
    ) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            manager = self._sessions.get(self._peer(request))
            if manager is None:
                return Response("403 Forbidden", status_code=403)
            if right is not None and right not in manager.rights:
                return _retcode(retcodes.ERR_PERMISSIONS)
            return handler(manager, request)

        return endpoint

    def _test_access(self, manager: Manager, request: Request) -> Response:
        return _retcode(retcodes.OK)

    def _symbol_total(self, manager: Manager, request: Request) -> Response:
        symbols, _ = self.source.snapshot()
        return _done({"total": str(len(symbols))})

    def _symbol_next(self, manager: Manager, request: Request) -> Response:
        symbols, _ = self.source.snapshot()
        index = _int_param(request, "index")
        names = sorted(symbols)
        if index is None or not 0 <= index < len(names):
            return _retcode(retcodes.ERR_NOTFOUND if index is not None else retcodes.ERR_PARAMS)
        return _done(symbol_record(symbols[names[index]]))

    def _symbol_get(self, manager: Manager, request: Request) -> Response:
        symbols, _ = self.source.snapshot()
        spec = symbols.get(request.query_params.get("symbol", ""))
        return _done(symbol_record(spec)) if spec else _retcode(retcodes.ERR_NOTFOUND)

    def _groups(self) -> dict[str, dict[str, str]]:
        _, accounts = self.source.snapshot()
        groups: dict[str, dict[str, str]] = {}
        for snapshot in accounts:
            name = group_name(snapshot)
            record = group_record(name, snapshot)
            if groups.setdefault(name, record) != record:
                raise ValueError(f"accounts of group {name} disagree on its settings")
        return groups

    def _group_total(self, manager: Manager, request: Request) -> Response:
        visible = [g for g in self._groups() if manager.may_read(g)]
        return _done({"total": str(len(visible))})

    def _group_next(self, manager: Manager, request: Request) -> Response:
        visible = sorted(g for g in self._groups().items() if manager.may_read(g[0]))
        index = _int_param(request, "index")
        if index is None or not 0 <= index < len(visible):
            return _retcode(retcodes.ERR_NOTFOUND if index is not None else retcodes.ERR_PARAMS)
        return _done(visible[index][1])

    def _group_get(self, manager: Manager, request: Request) -> Response:
        name = request.query_params.get("group", "")
        record = self._groups().get(name)
        if record is None:
            return _retcode(retcodes.ERR_NOTFOUND)
        return _done(record) if manager.may_read(name) else _retcode(retcodes.ERR_PERMISSIONS)

    def _select(self, manager: Manager, request: Request) -> list[AccountSnapshot] | Response:
        """Accounts named by `login=` (comma list) or `group=` (masks), within the manager's groups.
        Asking for a group the manager may not read is refused, not silently narrowed."""
        _, accounts = self.source.snapshot()
        logins_param = request.query_params.get("login")
        masks_param = request.query_params.get("group")
        if logins_param:
            try:
                wanted = {int(x) for x in logins_param.split(",") if x.strip()}
            except ValueError:
                return _retcode(retcodes.ERR_PARAMS)
            chosen = [a for a in accounts if a.login in wanted]
        elif masks_param:
            masks = masks_param.split(",")
            chosen = [a for a in accounts if matches(group_name(a), masks)]
        else:
            return _retcode(retcodes.ERR_PARAMS)
        if any(not manager.may_read(group_name(a)) for a in chosen):
            return _retcode(retcodes.ERR_PERMISSIONS)
        return chosen

    def _user_logins(self, manager: Manager, request: Request) -> Response:
        chosen = self._select(manager, request)
        if isinstance(chosen, Response):
            return chosen
        return _done([str(a.login) for a in chosen])

    def _user_get_batch(self, manager: Manager, request: Request) -> Response:
        chosen = self._select(manager, request)
        if isinstance(chosen, Response):
            return chosen
        return _done([user_record(a, group_name(a)) for a in chosen])

    def _account_get_batch(self, manager: Manager, request: Request) -> Response:
        """`user/account/get_batch`: the server's own trade figures of the accounts asked for
        (`login=` list or `group=` masks), money as strings with the group's currency digits.
        A source without figures has nothing to say about accounts: 13 Not found."""
        chosen = self._select(manager, request)
        if isinstance(chosen, Response):
            return chosen
        _, figures = self.source.account_figures()
        if not figures:
            return _retcode(retcodes.ERR_NOTFOUND)
        return _done([account_record(figures[a.login]) for a in chosen if a.login in figures])

    def _position_get_batch(self, manager: Manager, request: Request) -> Response:
        chosen = self._select(manager, request)
        if isinstance(chosen, Response):
            return chosen
        symbols, _ = self.source.snapshot()
        return _done([position_record(a.login, p, symbols[p.symbol], a.currency)
                      for a in chosen for p in a.positions])


    # -- incremental feed: ticks and deals (served when the fake has a `feed`) ---------------------

    def _feed_routes(self) -> list[Route]:
        if self.feed is None:
            return []
        return [
            Route("/api/tick/last", self._command("ticks", self._tick_last)),
            Route("/api/deal/get_batch", self._command("deals", self._deal_get_batch)),
        ]

    def _symbols(self) -> dict[str, SymbolSpec]:
        if self._symbols_cache is None:
            self._symbols_cache = self.source.snapshot()[0]
        return self._symbols_cache

    def _tick_last(self, manager: Manager, request: Request) -> Response:
        """`tick/last?symbol=A,B&trans_id=N`: the last tick of each named symbol changed after
        transaction N (all of them for 0), and the newest transaction id as `trans_id`."""
        assert self.feed is not None
        names = {n for n in request.query_params.get("symbol", "").split(",") if n}
        trans_id = _int_param(request, "trans_id") if "trans_id" in request.query_params else 0
        if not names or trans_id is None or trans_id < 0:
            return _retcode(retcodes.ERR_PARAMS)
        symbols = self._symbols()
        ticks, newest = self.feed.ticks_since(trans_id, names)
        return JSONResponse({"retcode": retcodes.make(retcodes.OK), "trans_id": str(newest),
                             "answer": [tick_record(q, symbols[q.symbol]) for q in ticks]})

    def _deal_get_batch(self, manager: Manager, request: Request) -> Response:
        """`deal/get_batch?group=masks|login=list&from=S&to=S`: deals of the chosen accounts whose
        time is within [from, to] (seconds), oldest first; a group the manager may not read is
        refused, as for positions."""
        assert self.feed is not None
        q = request.query_params
        from_s, to_s = _int_param(request, "from"), _int_param(request, "to")
        if from_s is None or to_s is None or from_s > to_s:
            return _retcode(retcodes.ERR_PARAMS)
        owners = self.feed.owners
        if q.get("login"):
            try:
                wanted = {int(x) for x in q["login"].split(",") if x.strip()}
            except ValueError:
                return _retcode(retcodes.ERR_PARAMS)
            if any(not manager.may_read(owners[n].group) for n in wanted if n in owners):
                return _retcode(retcodes.ERR_PERMISSIONS)
            chosen = [d for d in self.feed.deals_between(from_s, to_s) if d.login in wanted]
        elif q.get("group"):
            masks = q["group"].split(",")
            groups = {o.group for o in owners.values() if matches(o.group, masks)}
            if any(not manager.may_read(g) for g in groups):
                return _retcode(retcodes.ERR_PERMISSIONS)
            chosen = [d for d in self.feed.deals_between(from_s, to_s)
                      if d.login in owners and owners[d.login].group in groups]
        else:
            return _retcode(retcodes.ERR_PARAMS)
        symbols = self._symbols()
        return _done([deal_record(d, owners[d.login].currency, symbols.get(d.symbol)) for d in chosen])


    def _trade_balance(self, manager: Manager, request: Request) -> Response:
        """`trade/balance?login=N&type=2|3&balance=AMOUNT&comment=TEXT`: a deposit or withdrawal
        (type 2) or credit (type 3) booked as a deal, which the feed then serves like any other;
        answers its ticket. A non-numeric or zero amount, another type, or a login the manager may
        not read is refused; an unknown login is not found."""
        assert self.money is not None
        q = request.query_params
        login, kind = _int_param(request, "login"), MONEY_TYPES.get(_int_param(request, "type") or 0)
        try:
            amount = float(q.get("balance", ""))
        except ValueError:
            return _retcode(retcodes.ERR_PARAMS)
        if login is None or kind is None or not math.isfinite(amount) or round(amount, 2) == 0:
            return _retcode(retcodes.ERR_PARAMS)
        owner = self.feed.owners.get(login) if self.feed is not None else None
        if owner is not None and not manager.may_read(owner.group):
            return _retcode(retcodes.ERR_PERMISSIONS)
        try:
            deal = self.money(login, kind, amount, q.get("comment", "")[:32])
        except KeyError:
            return _retcode(retcodes.ERR_NOTFOUND)
        return _done({"ticket": str(deal.ticket)})


def _int_param(request: Request, name: str) -> int | None:
    try:
        return int(request.query_params.get(name, ""))
    except ValueError:
        return None


def _retcode(code: int) -> JSONResponse:
    return JSONResponse({"retcode": retcodes.make(code)})


def _done(payload: object) -> JSONResponse:
    return JSONResponse({"retcode": retcodes.make(retcodes.OK), "answer": payload})

