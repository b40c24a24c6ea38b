"""TenantHost: one Ray actor process hosting many tenants' supervisors and aggregators.

Why. A Ray actor process costs ~100-150 MB and a tenant ran two of them (supervisor, aggregator)
plus its own account hosts, so a node carried tens of tenants, not the hundreds of small brokers
a SaaS node must. Here each tenant is a logical actor, the way account actors live in account
hosts: its own `Supervisor` and `Aggregator` objects (its own state), its calls delivered in the
order they arrive, its own failure and restart; a few tenant host processes (about one per core)
carry them all, and the tenants' accounts live in one shared pool of account hosts (each tenant's
connections under keys of their own, `Supervisor(shared_hosts=...)`); the batches all its tenants
send a shared host in one turn of the event loop go as one call (`actors/host_calls.py`).

Isolation and recovery. A call that raises in one tenant answers that caller with the error and
touches no other tenant. A tenant whose logical actor fails (`crash`, the failure drill) loses its
in-memory state as a process death would and is started again from its registration: the new
supervisor re-attaches to its accounts in the shared hosts and re-synchronises them from the
gateway, and its aggregator is rebuilt from them, while the other tenants go on. A tenant host
that dies (kill -9) is restarted by Ray (`max_restarts=-1`) and starts every tenant it held again
the same way, read from its registrations, kept in Ray's own key-value store (the GCS), which
outlives the process. Idle costs nothing of its own: no loop or timer per tenant or per host
besides the tenants' own (gateway polling, paced publishing, stats).

Reaching a tenant. Other processes hold a `TenantRef` (`tenant_ref`): `ref.method.remote(...)`
is one Ray call to the tenant host, `call(tenant, role, method, ...)`, so code written against a
supervisor or aggregator actor handle works unchanged.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ray
from ray import cloudpickle
from ray.actor import ActorHandle
from ray.experimental import internal_kv

from actors import death_notice
from actors.names import tenant_host_name
from actors.risk_aggregator import Aggregator
from actors.tenant_supervisor import Supervisor

log = logging.getLogger(__name__)

SHARED_POOL = "shared"  # the account host pool every tenant host's tenants share
ROLES = ("supervisor", "aggregator")


class TenantNotHosted(LookupError):
    """A call for a tenant this tenant host does not hold (never added, or removed)."""


def registration_key(namespace: str, host_name: str, tenant_id: int | str) -> str:
    """The key of a tenant's registration with a tenant host in Ray's key-value store (scoped by
    the Ray namespace, not Redis: no deployment prefix applies); other processes find a hosted
    tenant by it (`actors/tenant_directory.py`)."""
    return f"tenant-host:{namespace}:{host_name}:tenant:{tenant_id}"


class LocalActor:
    """A logical actor's handle inside its host: `handle.method.remote(...)` runs the method on
    this process's event loop as a task and returns it (awaitable, like an ObjectRef). Ray
    ObjectRefs among the arguments are resolved first, as Ray does for an actor call."""

    def __init__(self, target: Any) -> None:
        self._target = target

    def __getattr__(self, name: str) -> _LocalMethod:
        return _LocalMethod(getattr(self._target, name))


class _LocalMethod:
    def __init__(self, method: Callable[..., Any]) -> None:
        self._method = method

    def remote(self, *args: Any, **kwargs: Any) -> asyncio.Future[Any]:
        return asyncio.ensure_future(self._call(args, kwargs))

    async def _call(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        resolved = [await arg if isinstance(arg, ray.ObjectRef | asyncio.Future) else arg for arg in args]
        result = self._method(*resolved, **kwargs)
        return await result if inspect.isawaitable(result) else result


class HostedSupervisor(Supervisor):
    """A tenant's supervisor living in a tenant host: its aggregator is a logical actor beside
    it in the same process, and ending itself is leaving the host."""

    def __init__(self, host: TenantHostCore, *args: Any, **kwargs: Any) -> None:
        self._host = host
        self.aggregator: Aggregator | None = None
        super().__init__(*args, **kwargs)

    def _new_aggregator(self) -> LocalActor:
        self.aggregator = Aggregator(self.tenant_id, self._publish_hz, self._redis_url, self._database_url)
        return LocalActor(self.aggregator)

    async def _kill_aggregator(self, aggregator: Any) -> None:
        """Close the logical aggregator: its stats writer, cancelled, deletes the stats key itself
        (`EngineStats.keep_in_redis`), so nothing here deletes it a second time."""
        if self.aggregator is not None:
            aggregator, self.aggregator = self.aggregator, None
            await aggregator.close()

    def _end_self(self) -> None:
        self._host.forget(self.tenant_id)


@dataclass(frozen=True)
class Registration:
    """How a tenant was added: what starting it again takes."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any]


class TenantHostCore:
    """The tenant host's logic; `TenantHost` runs it as a Ray actor."""

    def __init__(self, name: str, namespace: str) -> None:
        self.name = name
        self._kv_prefix = registration_key(namespace, name, "")
        self.tenants: dict[int, HostedSupervisor] = {}
        self.restarts: Counter[int] = Counter()  # logical restarts by tenant
        self.failed: dict[int, str] = {}  # tenants that could not be started again, with why

    # -- registrations (Ray's key-value store: outlives this process) ------------------------------

    def _register(self, tenant_id: int, registration: Registration) -> None:
        internal_kv._internal_kv_put(self._kv_prefix + str(tenant_id), cloudpickle.dumps(registration))

    def _registered(self) -> dict[int, Registration]:
        keys = internal_kv._internal_kv_list(self._kv_prefix) or []
        found: dict[int, Registration] = {}
        for key in keys:
            text = key.decode() if isinstance(key, bytes) else key
            blob = internal_kv._internal_kv_get(text)
            if blob is None:
                continue
            tenant_id = int(text.removeprefix(self._kv_prefix))
            try:
                found[tenant_id] = cloudpickle.loads(blob)
            except Exception as exc:  # written by other code (an upgrade): this tenant alone is lost
                self._failed(tenant_id, exc)
        return found

    def _failed(self, tenant_id: int, exc: BaseException) -> None:
        self.failed[tenant_id] = f"{type(exc).__name__}: {exc}"
        log.error("%s: tenant %s cannot be started again: %s", self.name, tenant_id, self.failed[tenant_id],
                  exc_info=exc)

    def forget(self, tenant_id: int) -> None:
        """The tenant left (removed, or no connection left): not started again after a restart."""
        self.tenants.pop(tenant_id, None)
        self.failed.pop(tenant_id, None)
        internal_kv._internal_kv_del(self._kv_prefix + str(tenant_id))

    # -- tenants -----------------------------------------------------------------------------------

    def _create(self, tenant_id: int, registration: Registration, reconstructed: bool) -> HostedSupervisor:
        self.failed.pop(tenant_id, None)
        supervisor = HostedSupervisor(self, tenant_id, *registration.args, **registration.kwargs,
                                      shared_hosts=SHARED_POOL, reconstructed=reconstructed)
        self.tenants[tenant_id] = supervisor
        return supervisor

    async def add(self, tenant_id: int, *args: Any, **kwargs: Any) -> bool:
        """Host a tenant (the arguments are `Supervisor`'s after `tenant_id`); the caller then calls
        its `start`, as for a supervisor actor. False when it is hosted already."""
        if tenant_id in self.tenants:
            return False
        kwargs.pop("shared_hosts", None)
        kwargs.pop("reconstructed", None)
        registration = Registration(args, kwargs)
        self._create(tenant_id, registration, reconstructed=False)  # bad arguments: nothing registered
        try:
            await asyncio.to_thread(self._register, tenant_id, registration)
        except BaseException:
            self.tenants.pop(tenant_id, None)
            raise
        return True

    async def restore(self) -> list[int]:
        """Start every registered tenant again (this process replaces one that died): each
        supervisor starts itself and re-attaches to its accounts. A tenant that cannot be started
        (its registration unreadable, its supervisor raising as it is made) is left out, with why
        in `failed` and in the answer to calls for it; its neighbours start all the same (one
        bad tenant used to leave every call to the host failing)."""
        registered = await asyncio.to_thread(self._registered)
        for tenant_id, registration in sorted(registered.items()):
            if tenant_id not in self.tenants:
                self.restarts[tenant_id] += 1
                self._start_again(tenant_id, registration)
        log.warning("%s: restarted; %d tenants started again", self.name, len(registered))
        return sorted(registered)

    def target(self, tenant_id: int, role: str) -> Any:
        """The tenant's supervisor or aggregator object."""
        supervisor = self.tenants.get(tenant_id)
        if supervisor is None and tenant_id in self.failed:
            raise TenantNotHosted(f"tenant {tenant_id} could not be started again by {self.name}: "
                                  f"{self.failed[tenant_id]}")
        if supervisor is None:
            raise TenantNotHosted(f"tenant {tenant_id} is not hosted by {self.name}")
        if role == "supervisor":
            return supervisor
        if role == "aggregator":
            if supervisor.aggregator is None:
                raise TenantNotHosted(f"tenant {tenant_id}'s aggregator is not running (no connection)")
            return supervisor.aggregator
        raise ValueError(f"no role {role!r}: one of {', '.join(ROLES)}")

    async def call(self, tenant_id: int, role: str, method: str, args: tuple[Any, ...] = (),
                   kwargs: dict[str, Any] | None = None) -> Any:
        """Call one tenant's supervisor or aggregator; its errors are this caller's alone."""
        if method.startswith("_"):
            raise ValueError(f"{method!r} is not a public method")
        result = getattr(self.target(tenant_id, role), method)(*args, **(kwargs or {}))
        return await result if inspect.isawaitable(result) else result

    async def remove(self, tenant_id: int) -> bool:
        """Stop a tenant (its connections closed on the shared hosts) and forget it."""
        supervisor = self.tenants.get(tenant_id)
        if supervisor is None:
            return False
        await supervisor.stop()
        await asyncio.to_thread(self.forget, tenant_id)
        return True

    async def remove_all(self) -> list[int]:
        """Stop and forget every tenant held here (the engine stops); returns them."""
        removed = sorted(self.tenants)
        for tenant_id in removed:
            await self.remove(tenant_id)
        return removed

    def has(self, tenant_id: int, role: str) -> bool:
        """Whether the tenant is held here with that logical actor running (its aggregator does
        not run while the tenant is suspended)."""
        try:
            self.target(tenant_id, role)
        except TenantNotHosted:
            return False
        return True

    async def crash(self, tenant_id: int) -> None:
        """Failure drill: the tenant's logical actor dies (its state is lost mid-way, nothing is
        closed or told) and is started again from its registration, as Ray does for a process;
        the other tenants are not touched."""
        supervisor = self.tenants.pop(tenant_id, None)
        if supervisor is None:
            raise TenantNotHosted(f"tenant {tenant_id} is not hosted by {self.name}")
        supervisor.abandon()
        if supervisor.aggregator is not None:
            await supervisor.aggregator.close()
        registered = await asyncio.to_thread(self._registered)
        self.restarts[tenant_id] += 1
        log.warning("%s: tenant %s failed; starting it again", self.name, tenant_id)
        if tenant_id in registered:
            self._start_again(tenant_id, registered[tenant_id])

    def _start_again(self, tenant_id: int, registration: Registration) -> None:
        try:
            self._create(tenant_id, registration, reconstructed=True)
        except Exception as exc:
            self._failed(tenant_id, exc)

    def hosted(self) -> dict[int, int]:
        """The tenants held here, with how many times each was started again."""
        return {tenant_id: self.restarts[tenant_id] for tenant_id in sorted(self.tenants)}


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=0, max_concurrency=100_000,  # type: ignore[call-overload]
            runtime_env=death_notice.RUNTIME_ENV)
class TenantHost(TenantHostCore):
    """The Ray actor: a process of many tenants' supervisors and aggregators, restarted by Ray
    when it dies (then it starts its tenants again). Async: tenants' calls (long polls among
    them) interleave on one event loop, as they would in a supervisor actor of their own."""

    def __init__(self, name: str, namespace: str | None = None) -> None:
        """`namespace`: the one its name is in (its registrations are kept under it, where other
        processes look); by default its job's."""
        super().__init__(name, namespace or ray.get_runtime_context().namespace)
        self._restoring: asyncio.Task[list[int]] | None = None
        if ray.get_runtime_context().was_current_actor_reconstructed:
            self._restoring = asyncio.ensure_future(self.restore())

    async def call(self, tenant_id: int, role: str, method: str, args: tuple[Any, ...] = (),
                   kwargs: dict[str, Any] | None = None) -> Any:
        """As `TenantHostCore.call`, once a restarted host has started its tenants again."""
        if self._restoring is not None:
            await self._restoring
        return await super().call(tenant_id, role, method, args, kwargs)

    async def has(self, tenant_id: int, role: str) -> bool:  # type: ignore[override]
        """`TenantHostCore.has`, once a restarted host has started its tenants again."""
        if self._restoring is not None:
            await self._restoring
        return super().has(tenant_id, role)

    async def remove_all(self) -> list[int]:
        """`TenantHostCore.remove_all`, once a restarted host has started its tenants again."""
        if self._restoring is not None:
            await self._restoring
        return await super().remove_all()

    async def hosted_tenants(self) -> dict[int, int]:
        """`hosted()`, once a restarted host has started its tenants again."""
        if self._restoring is not None:
            await self._restoring
        return self.hosted()

    def pid(self) -> int:
        """The tenant host's process (failure tests and benchmarks kill it)."""
        return os.getpid()


class TenantRef:
    """A tenant's supervisor or aggregator in a tenant host, called like a Ray actor handle:
    `await ref.status.remote()` is `host.call.remote(tenant, "supervisor", "status", ...)`."""

    def __init__(self, host: ActorHandle, tenant_id: int, role: str = "supervisor") -> None:
        if role not in ROLES:
            raise ValueError(f"no role {role!r}: one of {', '.join(ROLES)}")
        self.host, self.tenant_id, self.role = host, tenant_id, role

    def __getattr__(self, method: str) -> _RemoteCall:
        if method.startswith("_"):
            raise AttributeError(method)
        return _RemoteCall(self, method)


class _RemoteCall:
    def __init__(self, ref: TenantRef, method: str) -> None:
        self._ref, self._method = ref, method

    def remote(self, *args: Any, **kwargs: Any) -> ray.ObjectRef:
        ref = self._ref
        return ref.host.call.remote(ref.tenant_id, ref.role, self._method, args, kwargs)


def tenant_host(tenant_id: int, hosts: int, namespace: str | None = None) -> ActorHandle:
    """The tenant host that holds `tenant_id`, one of `hosts` (started if not running): tenants
    are dealt round them by id, so every process finds a tenant in the same one. In `namespace`,
    or this process's Ray namespace."""
    if hosts < 1:
        raise ValueError(f"need at least one tenant host, got {hosts}")
    name = tenant_host_name(tenant_id % hosts)
    namespace = namespace or ray.get_runtime_context().namespace
    return TenantHost.options(  # type: ignore[attr-defined]
        name=name, namespace=namespace, lifetime="detached", get_if_exists=True).remote(name, namespace)


def tenant_ref(tenant_id: int, hosts: int, role: str = "supervisor") -> TenantRef:
    """A handle on the tenant's supervisor (or aggregator) in its tenant host."""
    return TenantRef(tenant_host(tenant_id, hosts), tenant_id, role)
