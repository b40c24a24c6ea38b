"""RiskAggregator: merges account figures into the tenant's book and publishes it.

Each account's new figures replace its old contribution, so a tick costs O(accounts changed),
never a rescan. Hosts send a batch's figures as columns (`veles.risk.columns.FigureColumns`) and
the book keeps them as columns (`ColumnBook`): merging and judging the alert rules run on whole
arrays, and only accounts whose figures cross a rule's threshold go through the rule's own code.
A change is published at once while the pacer allows (`actors/publish_pacer.py`: a bucket of two
publishes refilled at 1.25 x PUBLISH_HZ, default 4 Hz), else as soon as it does.
Everything that changed since the last publish goes out as one diff with a version number.
Consumers read diffs by long-polling `diffs_since` over Ray (works with no Redis) or from the bus
when Redis is set; a consumer that missed a version asks for a full `snapshot`.

Toxic flow. The aggregator also runs the tenant's `FlowMonitor` (veles/risk/flow): the deals the
hosts applied and the quotes the supervisor sent them go through every detector, per account and
across accounts (hedged pairs and syndicates span hosts, so they are matched here, per tenant).
Off the batch path (`actors/flow_pipeline.py`): a batch only queues its events; at most every
flow period the queue is fed to the detectors and the accounts whose flow changed are scored
again, in short slices between which batches are merged and published; their rows carry the
score, the labels and the closed result (`veles.risk.flow.summary.FLOW_FIELDS`) and toxic_flow
rules judge them. A trader page asks `flow_profile` for one account's breakdown and evidence.

Alerts. With a database, the rules come from the tenant's `alert_rule` rows, every raise and clear
is written as an `alert` row before it is published (the message carries the row's `id`), and an
aggregator that Ray restarted reads the open rows back first, so it neither raises an open alert a
second time nor forgets to resolve one (`actors/alert_store.py`). `set_rules` swaps the rules of
a running aggregator, keeping the alerts of rules that still exist. Each stored alert carries the
tenant's next alert sequence number (`seq`); alerts are stored and published one batch at a time,
so they leave here in that order (the bus and the web tier's merge of two sources may still
reorder them: clients put them back, `veles/services/alert_order.py`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

import ray
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from actors import collector
from actors.alert_store import AlertStore, RuleSet, load_rules, tenant_rules
from actors.deal_log import DealLog
from actors.engine_stats import EngineStats
from actors.flow_pipeline import FLOW_PERIOD_S, SLICE_S, FlowPipeline
from actors.publish_pacer import PublishPacer
from actors.wire import ACCOUNT_FIELDS, Row, alert_row, alert_topic, book_message, book_topic
from veles.bus import RedisBus
from veles.config import engine_prefix, get_settings
from veles.risk.account import AccountFigures
from veles.risk.alerts import Alert, AlertEngine
from veles.risk.columns import ColumnBook, FigureColumns
from veles.risk.events import Deal, Quote
from veles.risk.flow.monitor import FlowMonitor
from veles.risk.flow.summary import empty_fields, profile, row_fields

_RING = 64  # diffs kept for consumers that fall slightly behind
_LATENCY_SAMPLES = 100_000
_RECENT_ALERTS = 500
_LOAD_RETRY_S = 5.0  # between attempts to load rules and open alerts from a database that failed
log = logging.getLogger(__name__)


class BookPublisher:
    """The aggregator's logic without Ray: book, pacing, versioned diffs, waiters."""

    def __init__(
        self, tenant_id: int, redis_url: str | None = None, database_url: str | None = None,
        cooldown_s: float | None = None,
    ) -> None:
        self.tenant_id = tenant_id
        # ALERT_COOLDOWN_SECONDS as this process reads it (the engine's job passes it on to actors)
        self._cooldown_s = get_settings().alert_cooldown_seconds if cooldown_s is None else cooldown_s
        self.epoch = time.time_ns()
        self.book = ColumnBook()  # every account's latest row and contribution, as columns
        self.version = 0
        self._changed: set[int] = set()
        self._sent_at = 0.0
        self._ring: deque[Row] = deque(maxlen=_RING)
        # sent_at of each batch applied since the last publish, with the hosts whose figures it had
        self._unpublished: list[tuple[float, tuple[int, ...]]] = []
        self.alerts = AlertEngine(tenant_rules(), self._cooldown_s)
        self.skipped_rules: tuple[str, ...] = ()
        self._store = AlertStore(database_url, tenant_id) if database_url else None
        self.deal_log = DealLog(database_url, tenant_id) if database_url else None  # for statements
        self._loaded = asyncio.Lock()
        self._ready = self._store is None
        self._next_load = 0.0  # monotonic time before which a failed load is not tried again
        self.recent_alerts: deque[Row] = deque(maxlen=_RECENT_ALERTS)
        self.seq = 0  # the last alert sequence number published (the stored counter's, after `load`)
        self._announcing = asyncio.Lock()  # numbers are taken and published in one order
        self.latencies: deque[float] = deque(maxlen=_LATENCY_SAMPLES)
        # (host, published at, seconds): the same per account host, so a benchmark that kills hosts
        # can tell the survivors' latency from the restored ones'
        self.host_latencies: deque[tuple[int, float, float]] = deque(maxlen=_LATENCY_SAMPLES)
        self.stats = EngineStats(tenant_id)  # for /metrics: lag, alerts, and the supervisor's counts
        self._removed = False  # accounts left the book since the last publish
        self._new_version = asyncio.Condition()
        self.redis_prefix = engine_prefix(database_url)
        self._bus = RedisBus(redis_url, self.redis_prefix) if redis_url else None
        self.bus_failures = 0  # publishes the Redis bus refused (see `_to_bus`)
        self._bus_down = False
        self.flow = FlowMonitor()
        self.flow_work = FlowPipeline(self.flow)  # the detectors' queue, worked off the batch path
        self._flow_rows: dict[int, Row] = {}  # each traded account's flow fields, as last scored

    def apply_flow(self, quotes: Sequence[Quote], deals: Sequence[Deal], news: Sequence[Any] = ()) -> bool:
        """Queue a batch's quotes, the deals the hosts applied, and releases on the calendar for
        the detectors (`actors/flow_pipeline.py`: they see them at `work_flow`, off the batch
        path); True when anything was queued."""
        return self.flow_work.feed(quotes, deals, news)

    def work_flow(self, budget_s: float | None = None) -> bool:
        """Feed the queued events to the detectors for about `budget_s` s (all when None); True
        when none is left."""
        return self.flow_work.work(budget_s)

    def score_flow(self, time_msc: int | None = None, budget_s: float | None = None
                   ) -> tuple[list[Alert], int, bool]:
        """Score the accounts whose flow changed, for about `budget_s` s (all when None); mark
        the rows whose flow fields changed. The toxic_flow alerts, how many rows changed, and
        True when every changed account is scored."""
        alerts: list[Alert] = []
        rows = 0
        judge = self.alerts.judges_flow
        flow = self.flow
        at = time_msc or flow.now_msc
        scored, done = self.flow_work.score(budget_s)
        for tox in scored:
            login = tox.login
            fields = row_fields(tox, flow.account(login).realized)
            if self._flow_rows.get(login) != fields:
                self._flow_rows[login] = fields
                if login in self.book:
                    self._changed.add(login)
                    rows += 1
            if judge:
                alerts.extend(self.alerts.on_flow(login, tox.score, (lbl.value for lbl in tox.labels), at))
        return alerts, rows, done

    def account_rows(self, logins: Sequence[int] | None = None) -> list[Row]:
        """On-screen rows: the book's figures with each account's flow fields."""
        rows = self.book.rows(ACCOUNT_FIELDS, logins)
        flows = self._flow_rows
        empty = empty_fields()
        for row in rows:
            row.update(flows.get(row["login"], empty))
        return rows

    def flow_profile(self, login: int) -> Row | None:
        """One account's flow profile (veles.risk.flow.summary.profile); None if not in the book."""
        if login not in self.book:
            return None
        return profile(self.flow, login)

    def apply(self, figures: Sequence[AccountFigures] | FigureColumns, sent_at: float,
              deals: Sequence[Deal] = (), *more: Sequence[AccountFigures] | FigureColumns,
              hosts: tuple[int, ...] = ()) -> list[Alert]:
        """Merge new account figures (published on the next tick), `figures` then each of `more`
        in order; returns the alerts they raise or clear, and those of the deals applied with them.
        Figures come as columns from the hosts, as objects from tools, tests and restores."""
        alerts: list[Alert] = []
        for part in (figures, *more):
            for columns in [part] if isinstance(part, FigureColumns) else FigureColumns.runs(part):
                if not len(columns):
                    continue
                self.book.apply(columns)
                self._changed.update(columns.login.tolist())
                alerts.extend(self.alerts.on_columns(columns))
        for deal in deals:
            alerts.extend(self.alerts.on_deal(deal))
        if self.deal_log is not None:
            self.deal_log.add(deals)
        self._sent_at = max(self._sent_at, sent_at)
        self._unpublished.append((sent_at, hosts))
        return alerts

    def remove(self, logins: Sequence[int]) -> None:
        """Take accounts out of the book (their connection was removed). A diff can only say what
        changed, not what left, so the epoch changes: every consumer reloads the full snapshot at
        the next publish, which no longer holds them."""
        self.book.remove(logins)
        for login in logins:
            self._changed.discard(login)
        self.epoch = time.time_ns()
        self._removed = True

    def open_rows(self) -> dict[tuple[str, str], int]:
        """The stored row of each raised alert, by (rule, subject); empty without a database."""
        return dict(self._store.open_rows) if self._store is not None else {}

    def snapshot(self) -> Row:
        """The whole book and every account, at the current version."""
        return book_message(
            tenant_id=self.tenant_id,
            epoch=self.epoch,
            version=self.version,
            full=True,
            book=self.book.figures(),
            accounts=self.account_rows(),
            sent_at=self._sent_at,
            published_at=time.time(),
        )

    async def publish(self, flow: bool = True) -> Row | None:
        """Cut a diff of what changed since the last one; None when nothing did. With `flow`, the
        detectors first take every queued event and score every changed account (tools and
        tests); the live aggregator does that on its own schedule instead (`Aggregator._run_flow`)."""
        if flow:
            self.work_flow()
            await self.announce(self.score_flow()[0])
        if not self._changed and not self._removed:
            return None
        self._removed = False
        now = time.time()
        self.latencies.extend(now - sent_at for sent_at, _ in self._unpublished)
        self.host_latencies.extend((host, now, now - sent_at) for sent_at, hosts in self._unpublished
                                   for host in hosts)
        self.stats.lag.observe_many(now - sent_at for sent_at, _ in self._unpublished)
        self._unpublished.clear()
        self.version += 1
        book = self.book.figures()
        await self.announce(self.alerts.on_book(book, int(now * 1000)))
        diff = book_message(
            tenant_id=self.tenant_id,
            epoch=self.epoch,
            version=self.version,
            full=False,
            book=book,
            accounts=self.account_rows(sorted(self._changed)),
            sent_at=self._sent_at,
            published_at=now,
        )
        self._changed.clear()
        self._ring.append(diff)
        await self._to_bus(book_topic(self.tenant_id), diff)
        async with self._new_version:
            self._new_version.notify_all()
        return diff

    async def _to_bus(self, topic: str, message: Row) -> None:
        """Publish on the Redis bus, if there is one. Redis away (restarting, say) must not stop the
        book or lose an alert: the diff stays in the ring and the alert in `recent_alerts`, where
        consumers long-polling over Ray find them, and a bus subscriber that missed a diff sees the
        gap and reloads the snapshot. So a failure is counted (`bus_failures`) and logged, once
        per outage, not raised."""
        if self._bus is None:
            return
        try:
            await self._bus.publish(topic, message)
        except (RedisError, OSError) as exc:
            self.bus_failures += 1
            if not self._bus_down:
                log.warning("tenant %s: the Redis bus failed (%s); consumers follow over Ray until it "
                            "is back", self.tenant_id, exc)
            self._bus_down = True
        else:
            if self._bus_down:
                log.info("tenant %s: the Redis bus is back after %d failed publishes", self.tenant_id,
                         self.bus_failures)
            self._bus_down = False

    async def load(self) -> None:
        """With a database: take the tenant's stored rules and its open alerts, once, before any
        figures are judged (every entry point awaits this).

        A database that does not answer must not stop the book: the built-in rules run meanwhile
        and loading is tried again at most every `_LOAD_RETRY_S` (until then an alert that was
        open may be raised a second time; a row is better twice than a book frozen).
        """
        if self._ready or time.monotonic() < self._next_load:
            return
        async with self._loaded:
            if self._ready or self._store is None:
                return
            store = self._store
            try:
                rules = await asyncio.to_thread(load_rules, store.url, self.tenant_id)
                engine = AlertEngine(rules.rules, self._cooldown_s)
                engine.restore(await asyncio.to_thread(store.load_open, engine.rules))
                self.seq = max(self.seq, await asyncio.to_thread(store.current_seq))
            except SQLAlchemyError as exc:
                self._next_load = time.monotonic() + _LOAD_RETRY_S
                log.warning("tenant %s: alert rules and open alerts not loaded (%s); built-in rules "
                            "meanwhile", self.tenant_id, exc)
                return
            self.alerts, self.skipped_rules = engine, rules.skipped
            self._ready = True

    async def set_rules(self, rules: RuleSet) -> None:
        """Run new rules from now on; alerts of rules that still exist stay raised, the others
        are resolved (nothing could clear them any more)."""
        await self.load()
        engine = AlertEngine(rules.rules, self._cooldown_s)
        engine.restore(self.alerts.export())
        kept = {(a.rule_id, a.subject) for a in engine.active()}
        gone = [(a.rule_id, a.subject) for a in self.alerts.active() if (a.rule_id, a.subject) not in kept]
        if self._store is not None and gone:
            await asyncio.to_thread(self._store.resolve, gone)
        self.alerts, self.skipped_rules = engine, rules.skipped

    async def resolve_alerts_of(self, logins: Sequence[int]) -> None:
        """Resolve the raised alerts of accounts taken out of the book (their connection was
        removed): nothing can clear them any more, so they would stay open for ever."""
        await self.load()
        gone = self.alerts.forget(str(login) for login in logins)
        if self._store is not None and gone:
            await asyncio.to_thread(self._store.resolve, gone)

    async def announce(self, alerts: list[Alert]) -> None:
        """Alerts are stored, then go out at once (not paced with the book) and are kept for the
        web tier; each message carries its row's id (None without a database) and its sequence
        number. One batch at a time, so they go out in the order of their numbers.

        Without a database the numbers are this process's own (they start again with it); alerts
        the database refused are published without one (`seq` None), since the desk must hear of
        them, and clients apply those as they come."""
        if not alerts:
            return
        async with self._announcing:
            numbered: list[tuple[int | None, int | None]]
            if self._store is None:
                numbered = [(None, self.seq + n) for n in range(1, len(alerts) + 1)]
            else:
                try:
                    numbered = list(await asyncio.to_thread(self._store.record, alerts))
                except SQLAlchemyError as exc:  # published anyway: the desk must hear of it
                    log.warning("tenant %s: %d alerts not stored: %s", self.tenant_id, len(alerts), exc)
                    numbered = [(None, None)] * len(alerts)
            self.stats.count_alerts(alerts)
            stored_at = time.time()
            messages = [alert_row(alert, row_id, seq, stored_at)
                        for alert, (row_id, seq) in zip(alerts, numbered, strict=True)]
            for message in messages:  # all kept before any is published: a bus failure loses none
                self.seq = max(self.seq, message["seq"] or 0)
                self.recent_alerts.append(message)
            for message in messages:
                await self._to_bus(alert_topic(self.tenant_id), message)

    async def diffs_since(self, version: int, timeout: float, epoch: int | None = None) -> list[Row]:
        """Diffs after `version`, waiting up to `timeout` s for one; a snapshot if too far behind,
        or at once if the caller's `epoch` is not this book's: a restarted aggregator numbers its
        versions from 0 again, so a replica ahead of it would otherwise wait for versions it
        already has and stay stale (the only way to follow without Redis)."""
        def moved_on() -> bool:
            return epoch is not None and epoch != self.epoch

        if version >= self.version and not moved_on():
            async with self._new_version:
                try:
                    await asyncio.wait_for(
                        self._new_version.wait_for(lambda: self.version > version or moved_on()), timeout)
                except TimeoutError:
                    return []
        if moved_on():
            return [self.snapshot()]
        oldest = self._ring[0]["version"] if self._ring else self.version + 1
        if version + 1 < oldest:
            return [self.snapshot()]
        return [d for d in self._ring if d["version"] > version]


class Aggregator:
    """One per tenant; async so long-polling consumers don't block `apply`. Run as a Ray actor
    process of its own (`RiskAggregator`) or as a logical actor among many tenants' in a tenant
    host (`actors/tenant_host.py`)."""

    def __init__(
        self, tenant_id: int, publish_hz: float, redis_url: str | None, database_url: str | None = None,
        flow_period_s: float = FLOW_PERIOD_S,
    ) -> None:
        self._core = BookPublisher(tenant_id, redis_url, database_url)
        self._period = 1.0 / publish_hz
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._flow_period = flow_period_s
        self._flow_due = asyncio.Event()  # the detectors have queued events
        self._flow_task: asyncio.Task[None] | None = None
        self._stats_task: asyncio.Task[None] | None = None
        self._redis_url = redis_url
        self._incarnation = 0  # the newest supervisor incarnation that sent figures

    async def start(self) -> None:
        """Load the stored rules and open alerts, then begin the paced publishing loop (idempotent)."""
        await self._core.load()
        if self._task is None:
            self._task = asyncio.create_task(self._run())
        if self._flow_task is None:
            self._flow_task = asyncio.create_task(self._run_flow())
        if self._stats_task is None and self._redis_url:
            keeping = self._core.stats.keep_in_redis(self._redis_url, self._core.redis_prefix)
            self._stats_task = asyncio.create_task(keeping)

    async def close(self) -> None:
        """Stop publishing and writing stats, and end the deal log's thread after its last write
        (the tenant stops; a Ray actor process of its own is simply killed instead, but in a
        tenant host the process goes on with the other tenants)."""
        for task in (self._task, self._stats_task, self._flow_task):
            if task is not None:
                task.cancel()
        self._task = self._stats_task = self._flow_task = None
        if self._core.deal_log is not None:
            await asyncio.to_thread(self._core.deal_log.close)

    async def _run(self) -> None:
        pacer = PublishPacer(self._period)
        while True:
            await self._changed.wait()
            wait = pacer.wait_s(time.monotonic())
            if wait > 0:
                await asyncio.sleep(wait)  # changes that land meanwhile go out in this publish
            self._changed.clear()
            pacer.take(time.monotonic())
            try:
                await self._core.publish(flow=False)  # scores are `_run_flow`'s
            except Exception:  # one failed publish must not end publishing for good
                log.exception("tenant %s: publish failed; the next change publishes again",
                              self._core.tenant_id)
                self._changed.set()

    async def _run_flow(self) -> None:
        """The detectors, off the batch path (`actors/flow_pipeline.py`): once events are queued,
        and at most every flow period, feed them all to the detectors and score every account
        whose flow changed, in slices of `SLICE_S` with a turn of the event loop between two (a
        batch that arrives meanwhile is merged and published without waiting for the rest);
        rows whose scores changed go out with the next publish, toxic_flow alerts at once.
        Sleeps while nothing is queued."""
        core = self._core
        while True:
            await self._flow_due.wait()
            started = time.monotonic()
            self._flow_due.clear()
            try:
                done = False
                while not done:
                    done = core.work_flow(SLICE_S)
                    if not done:
                        await asyncio.sleep(0)  # a turn for the book's calls
                done = False
                while not done:
                    alerts, rows, done = core.score_flow(budget_s=SLICE_S)
                    await core.announce(alerts)
                    if rows:
                        self._changed.set()
                    if not done:
                        await asyncio.sleep(0)
            except Exception:  # one failed scoring must not end scoring for good
                log.exception("tenant %s: toxic-flow scoring failed; tried again at the next batch",
                              core.tenant_id)
            await asyncio.sleep(max(0.0, started + self._flow_period - time.monotonic()))

    async def apply(
        self, figures: list[AccountFigures], sent_at: float, deals: list[Deal] | None = None,
        *more: list[AccountFigures] | FigureColumns, incarnation: int | None = None,
        hosts: tuple[int, ...] = (), quotes: list[Quote] | None = None, news: list[Any] | None = None,
    ) -> None:
        """Merge new account figures into the book (they go out on the next publish); alerts they
        raise go out at once. `more`: further figures, the hosts' `FigureColumns`, passed by the
        supervisor as the hosts' ObjectRefs (Ray resolves them here, so the supervisor never reads
        them). `hosts`: the account hosts whose figures these are (latency per host). `quotes`:
        the batch's prices and `news`: releases on the feed's calendar, for the flow detectors.

        `incarnation` fences a killed supervisor's last call: its arguments may resolve after the
        restarted supervisor has re-sent every account, and its older figures must not win. A call
        that names no incarnation (a tool or test feeding figures by hand, not a supervisor) is not
        fenced and does not move the fence."""
        if incarnation is not None:
            if incarnation < self._incarnation:
                return
            self._incarnation = incarnation
        await self._core.load()
        if figures or more or deals:  # a batch whose prices moved no account only feeds the detectors
            await self._core.announce(self._core.apply(figures, sent_at, deals or (), *more, hosts=hosts))
            self._changed.set()
        if self._core.apply_flow(quotes or (), deals or (), news or ()):
            self._flow_due.set()

    async def flow_profile(self, login: int) -> dict[str, Any] | None:
        """One account's toxic-flow profile (score breakdown, evidence, markouts, holding times,
        linked accounts); None when the account is not in the book."""
        return self._core.flow_profile(login)

    async def announce(self, alerts: list[Alert]) -> None:
        """Store and send alerts raised outside the book's rules (reconciliation's drift: see
        veles/mt5/reconciliation.py) exactly as the rules' own go out: numbered, stored, published."""
        await self._core.load()
        await self._core.announce(alerts)

    async def alerts(self) -> dict[str, Any]:
        """The alerts raised now (`active`), the latest raises and clears (`recent`, newest last,
        in sequence order) and the last sequence number published (`seq`)."""
        await self._core.load()
        ids = self._core.open_rows()
        return {
            "active": [alert_row(a, ids.get((a.rule_id, a.subject))) for a in self._core.alerts.active()],
            "recent": list(self._core.recent_alerts),
            "seq": self._core.seq,
        }

    async def set_rules(self, rules: RuleSet) -> None:
        """Swap the alert rules without a restart (see `BookPublisher.set_rules`)."""
        await self._core.set_rules(rules)

    async def rules(self) -> dict[str, Any]:
        """The rules running now, and the stored rules skipped with why."""
        await self._core.load()
        return {
            "rules": [rule.id for rule in self._core.alerts.rules],
            "skipped": list(self._core.skipped_rules),
        }

    async def remove(self, logins: list[int]) -> None:
        """Take accounts out of the book, and resolve their raised alerts; consumers reload the
        snapshot at once."""
        self._core.remove(logins)
        self._changed.set()
        await self._core.resolve_alerts_of(logins)

    async def flush(self) -> None:
        """Publish what is pending now, unpaced: the supervisor's last word before it stops this
        aggregator (its accounts' removal must reach the consumers first)."""
        await self._core.publish(flow=False)

    async def set_engine_stats(self, stats: dict[str, Any]) -> None:
        """The supervisor's share of the tenant's engine metrics (actors alive, restarts)."""
        self._core.stats.supervisor = stats

    async def stats(self) -> dict[str, Any]:
        """The tenant's engine metrics as `/metrics` exports them (see `actors/engine_stats.py`)."""
        return self._core.stats.as_row()

    async def take_host_latencies(self) -> list[tuple[int, float, float]]:
        """(host, published at, seconds) of each host's figures in each publish, like
        `take_latencies`: handed over and forgotten."""
        samples = list(self._core.host_latencies)
        self._core.host_latencies.clear()
        return samples

    async def take_latencies(self) -> list[float]:
        """Seconds from each batch leaving its gateway to the diff carrying it being published;
        the samples are handed over and forgotten (benchmarks read them)."""
        samples = list(self._core.latencies)
        self._core.latencies.clear()
        return samples

    async def snapshot(self) -> dict[str, Any]:
        """The whole book at the current version."""
        return self._core.snapshot()

    async def exposure_entries(self) -> dict[str, Any]:
        """The accounts behind each symbol's net exposure (`ColumnBook.exposure_entries`)."""
        return self._core.book.exposure_entries()

    async def pid(self) -> int:
        """The process hosting the aggregator (operators and failure tests kill it)."""
        return os.getpid()

    async def diffs_since(self, version: int, timeout: float = 1.0, epoch: int | None = None
                          ) -> list[dict[str, Any]]:
        """Long-poll for diffs after `version` (a full snapshot if that version is gone, or if
        `epoch`, the caller's, is not this aggregator's life)."""
        return await self._core.diffs_since(version, timeout, epoch)


@ray.remote(num_cpus=0, max_restarts=-1)
class RiskAggregator(Aggregator):
    """The tenant's aggregator as a Ray actor process of its own (named, detached). Its collector
    is calmed like the hosts' and the supervisor's (`actors/collector.py`): the detectors keep
    millions of small objects (recent entries, partner tables) and make many short-lived ones
    per deal, and young collections that walked them cost about as much as the detectors' work."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        collector.calm()
        super().__init__(*args, **kwargs)
