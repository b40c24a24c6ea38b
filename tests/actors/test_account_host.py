"""Account hosts in-process (no Ray): exactness against the reference, isolation, bounded logs.

The driver below does the supervisor's bookkeeping (shard map, group checkpoints, the batch log,
restores) the way `TenantSupervisor` does, so hypothesis can throw random price and deal streams
(seeded simulated brokers), host deaths and failing accounts at the hosts and compare every
account, field for field, with an `AccountActor` fed every batch undisturbed.
"""

from __future__ import annotations

from collections import deque
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.account_host import Checkpoint, HostBatch, HostCore
from actors.mt5_account import AccountActor, Step
from actors.shard_map import ShardMap, host_count
from actors.tenant_supervisor import Connection
from actors.wire import ACCOUNT_FIELDS
from veles.mt5.simulator import SimulatedBroker
from veles.risk.account import AccountFigures
from veles.risk.book import book_from_accounts
from veles.risk.columns import ColumnBook, FigureColumns
from veles.risk.events import Quote

START_MSC = 1_790_000_000_000
CONN = "sim"


class _Driver:
    """Hosts fed like the supervisor feeds them, next to undisturbed reference accounts."""

    def __init__(
        self, accounts: int, seed: int, hosts: int, checkpoint_every: int, start_msc: int = START_MSC
    ) -> None:
        self.broker = SimulatedBroker(CONN, accounts=accounts, seed=seed, start_msc=start_msc, warmup=30.0)
        self.swaps = 0
        self.symbols = {s.name: s for s in self.broker.symbols()}
        first = self.broker.poll()
        self.board: dict[str, Quote] = {q.symbol: q for q in first.quotes}
        snapshots = self.broker.accounts()
        self.reference = {s.login: AccountActor(s, self.symbols, self.board) for s in snapshots}
        self.map = ShardMap(hosts)
        self.every = checkpoint_every
        self.hosts = [HostCore(checkpoint_every) for _ in range(hosts)]
        self.checkpoints: dict[int, Checkpoint] = {}
        self.log: list[HostBatch] = []
        self.seq = 0
        self.book = ColumnBook()  # the aggregator's book, fed only the hosts' columns
        for index, host in enumerate(self.hosts):
            mine = [s for s in snapshots if self.map.host_of(s.login) == index]
            opened = host.open(CONN, self.symbols, self.board, mine, 0)
            self.book.apply(FigureColumns.of(opened.figures))
            self._keep(opened.checkpoint)

    def _keep(self, checkpoint: Checkpoint | None) -> None:
        if checkpoint is not None:
            self.checkpoints.update(dict.fromkeys(checkpoint.logins, checkpoint))

    def step(self) -> set[int]:
        """One poll through hosts and reference; the logins that failed in it."""
        batch = self.broker.poll()
        self.board.update((q.symbol, q) for q in batch.quotes)
        board = tuple(self.board.values()) if batch.deals else ()
        for login, actor in self.reference.items():
            own = tuple(d for d in batch.deals if d.login == login)
            swaps = tuple(w for w in batch.swaps if w.login == login)
            actor.apply(Step(batch.quotes, own, board if own else (), swaps))
        self.seq += 1
        self.swaps += len(batch.swaps)
        sent = HostBatch(CONN, self.seq, batch.quotes, batch.deals, board, batch.swaps)
        self.log.append(sent)
        failed: set[int] = set()
        for host in self.hosts:
            answer, columns = host.apply_split(CONN, [sent])
            self._check_columns(columns)
            self._keep(answer.checkpoint)
            failed |= answer.failed.keys()
        return failed

    def _check_columns(self, columns: FigureColumns) -> None:
        """What a host sends the aggregator: the accounts it stepped, each exactly the reference
        (rows and the USD cents the book sums), merged into a columnar book like the aggregator's."""
        logins = columns.login.tolist()
        expected = FigureColumns.of([self.reference[login].figures() for login in logins])
        assert columns.rows(ACCOUNT_FIELDS) == expected.rows(ACCOUNT_FIELDS)
        assert columns.money.tolist() == expected.money.tolist()
        self.book.apply(columns)

    def restore(self, index: int, logins: list[int], reset: bool) -> dict[int, str]:
        """What the supervisor sends a host to rebuild accounts from checkpoints + log."""
        checkpoints = list({id(c): c for c in (self.checkpoints[login] for login in logins)}.values())
        since = min(c.seq for c in checkpoints)
        batches = [b for b in self.log if b.seq > since]
        answer, columns = self.hosts[index].restore_split(CONN, self.symbols, checkpoints, logins, batches,
                                                          self.seq, reset)
        self._check_columns(columns)
        self._keep(answer.checkpoint)
        return answer.failed

    def kill(self, index: int) -> None:
        """The host's process dies; Ray starts an empty one; every account of it is restored."""
        self.hosts[index] = HostCore(self.every)
        assert self.hosts[index].apply(CONN, []).unknown
        logins = [login for login in self.reference if self.map.host_of(login) == index]
        assert self.restore(index, logins, reset=True) == {}

    def figures(self) -> dict[int, AccountFigures]:
        merged: dict[int, AccountFigures] = {}
        for host in self.hosts:
            merged.update(host.figures(CONN))
        return merged


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    accounts=st.integers(1, 12),
    hosts=st.integers(1, 4),
    checkpoint_every=st.integers(1, 7),
    polls=st.integers(1, 40),
    kills=st.lists(st.tuples(st.integers(0, 39), st.integers(0, 3)), max_size=3),
    failures=st.lists(st.tuples(st.integers(0, 39), st.integers(0, 11), st.integers(1, 2)), max_size=3),
)
def test_hosted_accounts_equal_the_reference_through_kills_and_failures(
    seed: int, accounts: int, hosts: int, checkpoint_every: int, polls: int,
    kills: list[tuple[int, int]], failures: list[tuple[int, int, int]],
) -> None:
    hosts = min(hosts, accounts)
    driver = _Driver(accounts, seed, hosts, checkpoint_every)
    logins = sorted(driver.reference)
    for poll in range(polls):
        for at, login_index, steps in failures:
            if at == poll:
                login = logins[login_index % len(logins)]
                driver.hosts[driver.map.host_of(login)].inject_failure(login, steps)
        failed = driver.step()
        for login in sorted(failed):  # restored alone, retried while the replay still raises
            for _ in range(3):
                if not driver.restore(driver.map.host_of(login), [login], reset=False):
                    break
        for at, index in kills:
            if at == poll:
                driver.kill(index % hosts)
    assert driver.figures() == {login: actor.figures() for login, actor in driver.reference.items()}
    reference = [driver.reference[login].figures() for login in sorted(driver.reference)]
    expected = replace(book_from_accounts(reference), top_risky=())
    assert replace(driver.book.figures(), top_risky=()) == expected


def test_rollover_swaps_reach_hosted_accounts_and_survive_a_host_restart() -> None:
    """Issue 15: a rollover's swaps go through the hosts like deals, and a host killed after it
    restores its accounts with the swap (from the checkpoint or the replayed log)."""
    midnight = (START_MSC // 86_400_000 + 1) * 86_400_000  # the end of a Monday: one day of swap
    driver = _Driver(accounts=10, seed=4, hosts=2, checkpoint_every=3, start_msc=midnight - 2_000)
    for _ in range(12):
        assert driver.step() == set()
    assert driver.swaps > 0
    driver.kill(0)
    driver.kill(1)
    expected = {login: actor.figures() for login, actor in driver.reference.items()}
    assert driver.figures() == expected
    assert any(p.swap for actor in driver.reference.values() for p in actor.state.positions())


def _driver() -> _Driver:
    return _Driver(accounts=10, seed=4, hosts=2, checkpoint_every=3)


def test_a_failing_account_is_skipped_while_its_neighbours_move_on() -> None:
    driver = _driver()
    for _ in range(5):
        driver.step()
    host = driver.hosts[0]
    mine = [login for login in driver.reference if driver.map.host_of(login) == 0]
    neighbour = max(mine, key=lambda login: driver.reference[login].figures().positions)
    # the victim holds positions too: a host steps an account only for the batches that touch it,
    # so a drill on an account with nothing open may never fire
    victim = min(login for login in set(mine) - {neighbour} if driver.reference[login].figures().positions)
    assert driver.reference[neighbour].figures().positions > 0
    host.inject_failure(victim, 1)
    before = host.figures(CONN)
    failed: set[int] = set()
    for _ in range(10):
        failed |= driver.step()
    assert failed == {victim}
    now = host.figures(CONN)
    assert victim not in now  # failed: not served until restored
    assert now[neighbour] == driver.reference[neighbour].figures()
    assert now[neighbour] != before[neighbour]  # the neighbour kept moving
    assert driver.restore(0, [victim], reset=False) == {}
    assert host.figures(CONN)[victim] == driver.reference[victim].figures()


def test_a_replay_that_keeps_raising_is_reported_not_raised() -> None:
    driver = _driver()
    driver.step()
    victim = max((login for login in driver.reference if driver.map.host_of(login) == 1),
                 key=lambda login: driver.reference[login].figures().positions)
    driver.hosts[1].inject_failure(victim, 100)
    failed: set[int] = set()
    for _ in range(20):
        failed |= driver.step()
    assert failed == {victim}
    for _ in range(3):
        assert victim in driver.restore(1, [victim], reset=False)
    others = {login for login in driver.reference if driver.map.host_of(login) == 1} - {victim}
    assert set(driver.hosts[1].figures(CONN)) == others


def test_an_account_the_log_no_longer_reaches_is_taken_from_the_gateway_snapshot() -> None:
    driver = _driver()
    for _ in range(3):
        driver.step()
    snapshot = driver.broker.account(min(driver.reference))
    index = driver.map.host_of(snapshot.login)
    answer = driver.hosts[index].restore(CONN, driver.symbols, [], [], [], driver.seq, reset=False,
                                         snapshots=[snapshot], quotes=driver.board)
    assert answer.failed == {}
    expected = AccountActor(snapshot, driver.symbols, driver.board).figures()
    assert driver.hosts[index].figures(CONN)[snapshot.login] == expected


def test_the_connection_log_is_bounded_and_says_when_it_no_longer_reaches() -> None:
    broker = SimulatedBroker(CONN, accounts=1, seed=1, start_msc=START_MSC, warmup=0.0)
    conn = Connection(spec=None, gateway=broker, symbols=frozenset(), log=deque(maxlen=5))  # type: ignore[arg-type]
    for seq in range(1, 13):
        conn.seq = seq
        conn.log.append(HostBatch(CONN, seq))
    assert len(conn.log) == 5
    assert [b.seq for b in conn.log_since(9) or []] == [10, 11, 12]
    assert conn.log_since(7) is not None  # batches 8..12 are all there
    assert conn.log_since(6) is None  # batch 7 is gone: re-snapshot from the gateway
    assert conn.log_since(12) == []


def test_checkpoints_are_spread_over_batches() -> None:
    """Every account is checkpointed once per `checkpoint_every` batches, a share per batch."""
    driver = _Driver(accounts=12, seed=2, hosts=1, checkpoint_every=4)
    sizes = []
    for _ in range(8):
        batch_seq = driver.seq + 1
        driver.step()
        sizes.append(sum(1 for c in driver.checkpoints.values() if c.seq == batch_seq))
    assert sizes == [3] * 8


def test_host_count_and_shard_map() -> None:
    assert host_count(10_000, cores=2) == 2
    assert host_count(10, cores=2, accounts_per_host=1) == 10  # a process per account
    assert host_count(10, cores=2, accounts_per_host=4) == 3
    assert host_count(3, cores=2, hosts=8) == 3  # never more hosts than accounts
    shard_map = ShardMap(10)
    assert len({shard_map.host_of(100_000 + n) for n in range(10)}) == 10  # consecutive logins spread
    shard_map.move(shard_map.shard_of(100_000), 9)
    assert shard_map.host_of(100_000) == 9
    with pytest.raises(ValueError, match="hosts"):
        ShardMap(0)
    with pytest.raises(ValueError, match="negative"):
        host_count(1, cores=2, hosts=-1)


def test_a_host_restore_keeps_the_checkpoints_it_replayed_from() -> None:
    """A killed host's accounts are replayed from their checkpoints, not pickled again (that made
    a host restore seconds slower at 10,000 accounts); the checkpoints they came from still serve
    a second kill right after, and each phase checkpoints its accounts again as before."""
    driver = _Driver(accounts=12, seed=5, hosts=2, checkpoint_every=4)
    for _ in range(6):
        driver.step()
    logins = [login for login in driver.reference if driver.map.host_of(login) == 0]
    kept = {login: driver.checkpoints[login] for login in logins}
    driver.hosts[0] = HostCore(driver.every)
    checkpoints = list({id(c): c for c in kept.values()}.values())
    batches = [b for b in driver.log if b.seq > min(c.seq for c in checkpoints)]
    answer = driver.hosts[0].restore(CONN, driver.symbols, checkpoints, logins, batches, driver.seq, True)
    assert answer.failed == {}
    assert answer.checkpoint is None
    assert sorted(f.login for f in answer.figures) == sorted(logins)
    driver.step()
    driver.kill(0)  # restored from the same (older) checkpoints again
    for _ in range(4):
        driver.step()
    assert all(driver.checkpoints[login].seq > driver.seq - 4 for login in logins)  # phases came round
    assert driver.figures() == {login: actor.figures() for login, actor in driver.reference.items()}
