"""Open a gateway from a plain description, so a Ray actor can build its own in its own process.

A `GatewaySpec` is small and picklable; the gateway object itself (sockets, simulator state)
never crosses process boundaries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from veles.mt5.gateway import Gateway, GatewayError


@dataclass(frozen=True, slots=True)
class GatewaySpec:
    """Which gateway to open: `kind` is "simulator", "replay", "webapi" (a broker's real trade
    server through the MT5 Web API: `options["url"]` its https://host:port, optional `ca_bundle`,
    `mask` of groups, `timeout_s`; the manager `login` and `password` below) or "mt5-manager" (the
    Windows Manager API, not installed); `options` are its arguments.

    `interval` is how often the engine polls it (seconds). When the engine falls behind, due polls
    are merged into one batch (`merge_when_behind`); turning that off processes every poll in
    order, which makes a run exactly reproducible (tests and benchmarks compare against that).

    `reconcile_every_s`: how often the engine holds Veles' figures of each account against the
    server's own (`veles/mt5/reconciliation.py`); 0 turns it off.

    `login` and `password` are the manager credentials presented to the trade server (None: the
    server needs none, as the demo's simulator). The password is kept out of `repr` so a spec in
    a log line or a Ray error message never shows it.
    """

    kind: str
    connection_id: str
    options: dict[str, Any] = field(default_factory=dict)
    interval: float = 0.25
    merge_when_behind: bool = True
    login: int | None = None
    password: str | None = field(default=None, repr=False)
    reconcile_every_s: float = 0.0  # compare with the server's own figures this often; 0: never


def open_gateway(spec: GatewaySpec) -> Gateway:
    """Build the gateway a spec describes; GatewayError for an unknown kind or refused credentials."""
    if spec.kind == "simulator":
        from veles.mt5.simulator import SimulatedBroker

        return SimulatedBroker(
            connection_id=spec.connection_id, **spec.options, login=spec.login, password=spec.password
        )
    if spec.kind == "replay":
        from veles.mt5.replay import ReplayGateway

        return ReplayGateway(connection_id=spec.connection_id, **spec.options)
    if spec.kind == "webapi":
        from veles.mt5.webapi.client import WebApiSettings
        from veles.mt5.webapi.gateway import WebApiGateway

        options = dict(spec.options)
        if spec.login is None or spec.password is None:
            raise GatewayError(
                f"{options.get('url')}: the MT5 Web API needs a manager login and password")
        settings = WebApiSettings(
            url=str(options.pop("url")), login=spec.login, password=spec.password,
            ca_bundle=options.pop("ca_bundle", None), timeout_s=float(options.pop("timeout_s", 10.0)))
        return WebApiGateway(settings, spec.connection_id, interval=spec.interval, **options)
    if spec.kind == "mt5-manager":
        # The MT5 Manager API is a Windows DLL that MetaQuotes licenses to brokers; no connector
        # for it ships with Veles, so a bare host:port is refused by name (the engine retries it).
        raise GatewayError(
            f"{spec.options.get('server')}: no MT5 manager connector is installed on this Veles server; "
            "reach a real server through its Web API (https://host:port) or a simulated one (sim://NAME)"
        )
    raise GatewayError(
        f"unknown gateway kind {spec.kind!r} (expected simulator, replay, webapi or mt5-manager)")
