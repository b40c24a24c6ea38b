"""What a dead host's accounts did while nobody heard them reaches the aggregator.

Found by reading the restore path for `veles chaos` (an account host killed under the engine):
the batches a dead host never answered (the one its death failed, those that came while it was
restored, the catch-up after) were replayed with only each account's last figures reported. A
large deal in them never raised its alert nor reached the deal log, and an account that crossed
margin call and came back within them raised nothing. Now the replay of every batch after the last
one reported comes back: applied deals in `updates`, each step's figures in `replayed`.

In-process hosts (no Ray) against undisturbed reference accounts fed every batch."""

from __future__ import annotations

from actors.account_host import Checkpoint, HostBatch, HostCore
from actors.mt5_account import AccountActor, Step
from veles.mt5.simulator import SimulatedBroker
from veles.risk.account import AccountFigures
from veles.risk.events import Quote

CONN = "sim"


class _Feed:
    """A seeded broker, the host's log and a reference that records every account's figures after
    every batch."""

    def __init__(self, accounts: int = 12, seed: int = 2) -> None:
        self.broker = SimulatedBroker(CONN, accounts=accounts, seed=seed, start_msc=1_790_000_000_000,
                                      warmup=30.0)
        self.symbols = {s.name: s for s in self.broker.symbols()}
        self.board: dict[str, Quote] = {q.symbol: q for q in self.broker.poll().quotes}
        self.snapshots = self.broker.accounts()
        self.reference = {s.login: AccountActor(s, self.symbols, self.board) for s in self.snapshots}
        self.after: dict[int, dict[int, AccountFigures]] = {}  # seq -> login -> figures
        self.log: list[HostBatch] = []

    def next(self) -> HostBatch:
        batch = self.broker.poll()
        self.board.update((q.symbol, q) for q in batch.quotes)
        board = tuple(self.board.values()) if batch.deals else ()
        for login, actor in self.reference.items():
            own = tuple(d for d in batch.deals if d.login == login)
            swaps = tuple(w for w in batch.swaps if w.login == login)
            actor.apply(Step(batch.quotes, own, board if own else (), swaps))
        sent = HostBatch(CONN, len(self.log) + 1, batch.quotes, batch.deals, board, batch.swaps)
        self.log.append(sent)
        self.after[sent.seq] = {login: actor.figures() for login, actor in self.reference.items()}
        return sent


def _in_order(seen: list[AccountFigures], feed: _Feed, login: int, first: int, last: int) -> bool:
    """Whether `seen` (one account's reported figures) are its figures after batches first..last,
    in order, ending with the last (a batch that did not move the account may be left out)."""
    steps = iter(feed.after[seq][login] for seq in range(first, last + 1))
    return all(any(f == step for step in steps) for f in seen) and seen[-1] == feed.after[last][login]


def test_a_restore_reports_what_the_batches_never_answered_did() -> None:
    feed = _Feed()
    host = HostCore(checkpoint_every=5)
    checkpoints: dict[int, Checkpoint] = {}
    for answer in [host.open(CONN, feed.symbols, feed.board, feed.snapshots, 0)] + [
            host.apply(CONN, [feed.next()]) for _ in range(12)]:  # answered and reported
        if answer.checkpoint is not None:  # accounts are checkpointed in groups, by phase
            checkpoints.update(dict.fromkeys(answer.checkpoint.logins, answer.checkpoint))
    reported = len(feed.log)
    unheard = [feed.next() for _ in range(30)]  # the host died at the first of these
    groups = list({id(c): c for c in checkpoints.values()}.values())
    since = min(c.seq for c in groups)

    restarted = HostCore(checkpoint_every=5)
    answer = restarted.restore(CONN, feed.symbols, groups, list(feed.reference),
                               [b for b in feed.log if b.seq > since], unheard[-1].seq, True,
                               reported=reported)

    expected_deals = [d.ticket for b in unheard for d in b.deals]
    assert expected_deals, "the seeded feed deals within the outage: the test would prove nothing"
    assert sorted(d.ticket for u in answer.updates for d in u.deals) == sorted(expected_deals)
    moved = 0
    for login in feed.reference:
        seen = [f for f in answer.replayed if f.login == login]
        if feed.after[reported][login] != feed.after[unheard[-1].seq][login]:
            assert seen, f"account {login}: none of its steps in the outage reported"
        if seen:
            assert _in_order(seen, feed, login, reported + 1, unheard[-1].seq)
            moved += len(seen) > 1
    assert moved, "no account moved more than once in the outage: the test would prove nothing"
    assert answer.figures == [feed.after[unheard[-1].seq][f.login] for f in answer.figures]


def test_a_catch_up_of_several_batches_reports_every_step() -> None:
    feed = _Feed()
    host = HostCore(checkpoint_every=5)
    host.open(CONN, feed.symbols, feed.board, feed.snapshots, 0)
    host.apply(CONN, [feed.next()])
    catch_up = [feed.next() for _ in range(8)]

    answer = host.apply(CONN, catch_up)

    stepped = 0
    for login in feed.reference:
        seen = [f for f in answer.replayed if f.login == login]
        seen += [f for f in answer.figures if f.login == login]
        if seen:
            assert _in_order(seen, feed, login, catch_up[0].seq, catch_up[-1].seq)
            stepped += len(seen) > 1
    assert stepped, "no account's intermediate steps of the catch-up were reported"
