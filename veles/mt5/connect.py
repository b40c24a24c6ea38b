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
    """Which gateway to open: `kind` is "simulator", "replay" or "mt5-manager" (a broker's real
    trade server, `options["server"]` its host:port); `options` are its arguments.

    `interval` is how often the engine polls it (seconds). When the engine falls behind, due polls
    are merged into one batch (`merge_when_behind`); turning that off processes every poll in
    order, which makes a run exactly reproducible (tests and benchmarks compare against that).

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
    if spec.kind == "mt5-manager":
        # The MT5 Manager API is a Windows DLL that MetaQuotes licenses to brokers; no connector
        # for it ships with Veles, so a real server is refused by name (the engine retries it).
        raise GatewayError(
            f"{spec.options.get('server')}: no MT5 manager connector is installed on this Veles server; "
            "only simulated servers (sim://NAME) can be reached"
        )
    raise GatewayError(f"unknown gateway kind {spec.kind!r} (expected simulator, replay or mt5-manager)")
