"""`ReplayGateway`: plays a recorded session back through the `Gateway` protocol.

Each `poll()` returns the next recorded batch as it was recorded (same seq, quotes and deals),
labelled with this gateway's `connection_id` and stamped with the current wall clock in
`sent_at` (it is the moment the batch leaves this gateway, which latency is measured from).
Replay runs as fast as it is polled. When the recording is exhausted, `finished` becomes True and
`poll()` returns empty batches with increasing seq, like a quiet live server.

`accounts()` and `account(login)` follow the replay: the recorded start snapshots plus the deals
played so far, booked exactly as the simulator books them (`veles.mt5.ledger`), so an engine
that re-synchronises mid-replay sees what a live server would show. Quotes the risk core would
reject (a recorded feed fault) still reach the engine but do not move those books; deals the
books cannot take (unknown login, duplicate) likewise pass through untouched.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from veles.mt5.gateway import GatewayError
from veles.mt5.ledger import LiveQuotes, ServerAccount
from veles.mt5.recording import SessionReader
from veles.risk.errors import RejectedEvent
from veles.risk.events import AccountSnapshot, Batch, Quote
from veles.risk.instruments import SymbolSpec


class ReplayGateway:
    """A recorded session, batch by batch."""

    def __init__(self, path: str | Path, connection_id: str | None = None) -> None:
        """`connection_id` relabels the session (default: the recorded connection id)."""
        self._reader = SessionReader(path)
        header = self._reader.header
        self.connection_id = connection_id or header.connection_id
        self._symbols = {spec.name: spec for spec in header.symbols}
        self._quotes = LiveQuotes()
        self._accounts = {a.login: ServerAccount(a, self._symbols, self._quotes) for a in header.accounts}
        self._batches: Iterator[Batch] = self._reader.batches(self.connection_id)
        self._seq = 0
        self.finished = False
        self._closed = False

    def symbols(self) -> Sequence[SymbolSpec]:
        """The recorded symbols."""
        return tuple(self._symbols.values())

    def accounts(self) -> Sequence[AccountSnapshot]:
        """Every recorded account as of the batches played so far."""
        return tuple(account.book.snapshot() for account in self._accounts.values())

    def account(self, login: int) -> AccountSnapshot:
        """One account as of the batches played so far."""
        try:
            return self._accounts[login].book.snapshot()
        except KeyError:
            raise GatewayError(f"no account {login} in the recording of {self.connection_id}") from None

    def poll(self) -> Batch:
        """The next recorded batch, or an empty one once the recording is exhausted."""
        if self._closed:
            raise GatewayError(f"{self.connection_id}: the replay is closed")
        batch = None if self.finished else next(self._batches, None)
        if batch is None:
            self.finished = True
            self._seq += 1
            return Batch(self.connection_id, self._seq, time.time())
        self._seq = batch.seq
        self._book(batch)
        return dataclasses.replace(batch, sent_at=time.time())  # the recording's calendar too

    def close(self) -> None:
        """Close the recording file; later polls raise GatewayError."""
        self._closed = True
        self._reader.close()

    def _book(self, batch: Batch) -> None:
        valid = [q for q in batch.quotes if q.symbol in self._symbols and _sane(q)]
        if valid:
            self._quotes.update_from(valid)
        for swap in batch.swaps:
            owner = self._accounts.get(swap.login)
            if owner is None:
                continue
            try:
                owner.apply_swap(swap)
            except RejectedEvent:
                continue
        for deal in batch.deals:
            account = self._accounts.get(deal.login)
            if account is None:
                continue
            try:
                account.apply(deal)
            except RejectedEvent:
                continue


def _sane(quote: Quote) -> bool:
    return math.isfinite(quote.bid) and math.isfinite(quote.ask) and 0.0 < quote.bid <= quote.ask
