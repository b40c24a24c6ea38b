"""ReportWorker: a pool of Ray actors that render queued reports.

Each worker is a named, detached actor that Ray restarts when its process dies
(`max_restarts=-1`). Its constructor starts the loop itself, so a restarted worker goes back to
work with nobody calling it: it first frees what its previous life still held (`release_stale`),
then claims reports from the database one at a time. Claims, leases and the fenced finish live in
`veles.reports.jobs`; what a report needs from the engine is asked of the tenant's aggregator and
supervisor by name. Status changes go out on the bus (Redis) on topic `reports:<tenant>`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from typing import Any

import ray

from actors.mt5_account import AccountDetail
from actors.tenant_directory import find
from actors.tenant_host import TenantNotHosted
from actors.wire import Row, account_row
from veles.bus import RedisBus
from veles.config import engine_prefix
from veles.reports.errors import SourceError
from veles.reports.jobs import release_stale
from veles.reports.runner import report_topic, run_one
from veles.reports.settings import ReportSettings
from veles.reports.storage import open_storage
from veles.risk.stress import BookPart

log = logging.getLogger(__name__)

_GONE = (ValueError, TenantNotHosted, ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError)


def worker_name(index: int) -> str:
    """The name of the pool's `index`-th worker."""
    return f"report-worker:{index}"


def detail_row(detail: AccountDetail) -> Row:
    """An account page's figures, positions and symbol digits as the report builders read them."""
    return {
        "figures": account_row(detail.figures),
        "positions": [
            {
                "ticket": p.ticket,
                "symbol": p.symbol,
                "side": p.side.value,
                "volume": p.volume,
                "price_open": p.price_open,
                "swap": p.swap,
                "profit": detail.profits.get(p.ticket),
            }
            for p in detail.positions
        ],
        "digits": dict(detail.digits),
    }


class RayLiveSource:
    """The engine's live figures for a report, read from the tenant's supervisor and aggregator
    wherever they run (`actors/tenant_directory.py`)."""

    def __init__(self, namespace: str, timeout: float) -> None:
        self._namespace, self._timeout = namespace, timeout

    def _call(self, tenant_id: int, role: str, method: str, *args: Any) -> Any:
        what = f"tenant {tenant_id}'s {role}"
        try:
            handle = find(tenant_id, role, self._namespace)
            if handle is None:
                raise ValueError(what)
            return ray.get(getattr(handle, method).remote(*args), timeout=self._timeout)
        except _GONE as exc:
            raise SourceError(f"the risk engine is not running for this broker ({what} not found)") from exc
        except ray.exceptions.GetTimeoutError as exc:
            raise SourceError(f"the risk engine did not answer within {self._timeout:g} s ({what})") from exc

    def book(self, tenant_id: int) -> Row:
        snapshot: Row = self._call(tenant_id, "aggregator", "snapshot")
        return snapshot

    def book_parts(self, tenant_id: int) -> list[BookPart]:
        parts: list[BookPart] = self._call(tenant_id, "supervisor", "book_parts")
        return parts

    def account(self, tenant_id: int, login: int) -> Row | None:
        detail = self._call(tenant_id, "supervisor", "account_detail", login)
        if detail is None:
            return None
        return detail_row(detail)


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=0)
class ReportWorker:
    """One worker of the pool; renders reports in a background thread for as long as it lives."""

    def __init__(
        self, name: str, database_url: str, redis_url: str | None, namespace: str, settings: ReportSettings
    ) -> None:
        self._name, self._url, self._redis = name, database_url, redis_url
        self._settings = settings
        self._live = RayLiveSource(namespace, settings.live_timeout)
        self._storage = open_storage(settings)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def _announce(self, tenant_id: int, message: dict[str, Any]) -> None:
        if self._redis is None:
            return  # no bus between processes: the portal reads status from the database

        async def publish(url: str) -> None:
            bus = RedisBus(url, engine_prefix(self._url))
            try:
                await bus.publish(report_topic(tenant_id), message)
            finally:
                await bus.aclose()

        try:
            asyncio.run(publish(self._redis))
        except Exception:  # a lost notice must not fail the report: the row holds the truth
            log.exception("%s: could not announce report %s", self._name, message.get("report_id"))

    def _loop(self) -> None:
        released: int | None = None  # freed once, before the first claim
        while not self._stop.is_set():
            try:
                if released is None:
                    released = release_stale(self._url, self._name)
                    if released:
                        log.warning("%s: took back %d report(s) its previous life held", self._name, released)
                report = run_one(
                    self._url, self._settings, self._name, self._live, self._storage, self._announce
                )
            except Exception:  # the database is down: wait and try again
                log.exception("%s: could not reach the report queue", self._name)
                report = None
            if report is None:
                self._stop.wait(self._settings.poll_seconds)

    def pid(self) -> int:
        """The worker's process (failure tests kill it)."""
        return os.getpid()

    def stop(self) -> None:
        """Finish the report in hand, then stop claiming."""
        self._stop.set()
        self._thread.join()
