"""Joining Ray: the engine's processes start or join a cluster; web processes only ever join.

Two entry points, because the two kinds of process want different things:

- `connect` (engine side: `veles engine`, `veles demo`, the engine's own actors' helpers) joins the
  cluster at RAY_ADDRESS or, with none set, starts a fresh local cluster: the engine *is* the
  thing that needs Ray there.
- `join` (web side: the API and the portal asking the engine for an account, pushing rules or
  connection changes) never starts a cluster. A web process with no RAY_ADDRESS that is not
  already connected (tests share one process with their engine) raises `EngineUnreachable` at
  once: a cluster started inside the web process would be a second, empty one, holding none of
  the engine's actors, and would cost the web server seconds of start-up and a core. `veles demo`
  gives its portal the engine's address; in production set RAY_ADDRESS on the web processes.
  `join` runs `ray.init` in a worker thread (it blocks for seconds), once per process, so the
  event loop keeps serving while the first request waits for it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import ray

from actors.tenant_directory import find
from veles.config import Settings

_join_lock = threading.Lock()  # one ray.init per process, whichever thread asks first


class EngineUnreachable(ConnectionError):
    """This web process cannot reach the engine's Ray cluster (no RAY_ADDRESS, or it refused)."""


def connect(settings: Settings) -> None:
    """Initialise Ray once per process in the `veles` namespace (engine side; blocking).

    With no RAY_ADDRESS a new local cluster is started (`address="local"`, never "auto", which
    could attach to a stale cluster left by another run).
    """
    if ray.is_initialized():
        return
    # Engine actors are handed the database URL, not the settings: an explicit Redis namespace and
    # the alert cool-down travel to them in the job's environment (read there by `get_settings`).
    env = {"VELES_REDIS_PREFIX": settings.veles_redis_prefix} if settings.veles_redis_prefix else {}
    env["ALERT_COOLDOWN_SECONDS"] = str(settings.alert_cooldown_seconds)
    runtime_env = {"env_vars": env}
    if settings.ray_address:
        ray.init(address=settings.ray_address, namespace=settings.ray_namespace,
                 logging_level=logging.WARNING, log_to_driver=False, runtime_env=runtime_env)
    else:
        ray.init(address="local", num_cpus=settings.ray_num_cpus, include_dashboard=False,
                 namespace=settings.ray_namespace, logging_level=logging.WARNING, log_to_driver=False,
                 runtime_env=runtime_env)


def _join_blocking(settings: Settings) -> None:
    with _join_lock:
        if ray.is_initialized():
            return
        if not settings.ray_address:
            raise EngineUnreachable(
                "RAY_ADDRESS is not set: this web process does not start a Ray cluster of its own; "
                "point it at the engine's cluster (veles engine prints the address)"
            )
        try:
            ray.init(address=settings.ray_address, namespace=settings.ray_namespace,
                     logging_level=logging.WARNING, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise EngineUnreachable(f"Ray at {settings.ray_address} refused: {exc}") from exc


async def join(settings: Settings) -> None:
    """Join the engine's cluster without blocking the event loop and without ever starting one
    (web side); EngineUnreachable when that is not possible. Free once connected."""
    if ray.is_initialized():
        return
    await asyncio.to_thread(_join_blocking, settings)


async def named_actor(settings: Settings, name: str) -> ray.actor.ActorHandle:
    """A detached actor of the engine by name, looked up off the event loop (the lookup is a
    blocking call to Ray's control store). ValueError when no actor has that name."""
    await join(settings)
    return await asyncio.to_thread(ray.get_actor, name, namespace=settings.ray_namespace)


async def tenant_actor(settings: Settings, tenant_id: int, role: str) -> Any | None:
    """The tenant's supervisor or aggregator (`role`), wherever it runs (`actors/tenant_directory`),
    called like an actor handle; None when the tenant runs none. Joins and looks up off the
    event loop."""
    await join(settings)
    return await asyncio.to_thread(find, tenant_id, role, settings.ray_namespace)


def gcs_address() -> str:
    """The address other processes use to join the cluster this process is connected to."""
    return str(ray.get_runtime_context().gcs_address)
