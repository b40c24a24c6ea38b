"""Cross-account abuse: hedged pairs and copy-trading syndicates.

Published (TOXIC-FLOW.md): propriotec flags opposite positions on the same symbol at about the
same time and size held by different accounts (hedging), and scores copied trades on symbol,
entry time and price within tolerances (copy trading). Neither publishes thresholds.

Each entry is compared with the entries other accounts made on the same symbol in the last
`window_s` seconds: same side is a copy, opposite side with volumes within a factor
`volume_ratio` is a hedge. In a busy book many accounts enter the same symbol within seconds by
chance, so one match means nothing; an account is a hedged pair (syndicate) when one partner
matched at least `min_matches` of its entries, at least `share` of the entries of the side that
entered fewer and at least `partner_share` of the other's - a relation both sides live by - and
the same account entered first in at
least `leader_share` of the matches (copiers follow; two busy traders of one symbol take turns).
A scalper entering every few seconds co-occurs with anyone trading its symbol, but those matches
are a sliver of its own entries.
The matches must span at least two symbols: two traders of one symbol (two grids, say) react to
the same moves of it at about the same times without copying each other, while a copier follows
its leader across whatever the leader trades. A relation needs the matches to be `share` of one
side's entries and `partner_share` of the other's, whichever side that is: a leader trades alone
too, and a follower mixes its own trades in (tuned on seeds 101-103 and 111-112, see the README).
Entries that add to the account's exposure on the same symbol and side are its own pattern
(martingale, grid) and are left out too. Entries inside a news window are left out: a release makes
many accounts trade alike.

Per-account partner tables are bounded (`PARTNERS`); a partner that stays far below the share is
dropped, so chance co-traders of a scalper in a busy book do not accumulate.

Cost. Comparing every entry with every recent entry on its symbol grows with the square of the
book's entry rate (at 10,000 accounts a major symbol has hundreds of entries in a 6 s window).
Recent entries are bucketed per symbol by login, so an entry is compared only with the recent
entries of its account's known partners (at most `PARTNERS`, a dict look-up each). The whole
window is scanned for new partners only on the account's first `DISCOVER` entries and then on
every `RESCAN`-th: a real partner matches at least half of the account's entries, so it shows in
the first few (missed by all of the first 8 with probability 2**-8 at that share), and is counted
on every entry from then on; a chance co-trader found by a scan is counted only while it repeats
and is evicted when it does not. An entry costs O(PARTNERS) and a scan O(window) on 1 entry in
`RESCAN`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from operator import attrgetter, itemgetter

from veles.risk.flow.evidence import EVIDENCE_TICKETS, Finding, Label, ratio_strength
from veles.risk.flow.trades import Entry

PARTNERS = 48  # candidate partners tracked per account
DISCOVER = 8  # an account's first entries are each matched against the whole window
RESCAN = 32  # after those, one entry in RESCAN is (new partners that start late)
_COPY, _HEDGE = 0, 1
_SINCE, _ORDER = 2, 4  # offsets in `_Partner.data`
_DATA = attrgetter("data")
_COPY_OF = itemgetter(_COPY)
_HEDGE_OF = itemgetter(_HEDGE)


@dataclass(frozen=True, slots=True)
class CrossRule:
    """Windows and thresholds of the cross-account detectors."""

    window_s: float = 6.0
    volume_ratio: float = 1.5
    min_matches: int = 4
    share: float = 0.5
    partner_share: float = 0.25
    leader_share: float = 0.75


@dataclass(slots=True)
class _Recent:
    entry: Entry
    matched: set[int] = field(default_factory=set)


class _Partner:
    """Matches of one account with one partner. A busy book makes many (most are chance
    co-traders that match once and are evicted), so one costs two tracked objects: `data` holds
    per kind (_COPY, _HEDGE) the match count at `kind`, when the pair first was strong at
    `_SINCE + kind`, and at `_ORDER + 3 * kind` the matches where this account entered first,
    second, or at the same millisecond; the evidence tickets are kept from the second match on
    (the first meanwhile in `first`)."""

    __slots__ = ("data", "first", "symbol", "tickets")

    def __init__(self, ticket: int, symbol: str) -> None:
        self.data = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        self.first = ticket
        self.symbol = symbol  # of the matches so far; "" once they span two symbols
        self.tickets: deque[int] | None = None

    def add_ticket(self, ticket: int) -> None:
        """Keep a later match's ticket as evidence (the latest EVIDENCE_TICKETS)."""
        if self.tickets is None:
            self.tickets = deque((self.first,), maxlen=EVIDENCE_TICKETS)
        self.tickets.append(ticket)

    def evidence(self) -> tuple[int, ...]:
        """The evidence tickets, oldest first."""
        return (self.first,) if self.tickets is None else tuple(self.tickets)

    def consistent(self, kind: int, share: float) -> bool:
        """Whether one side leads (or they tie) in at least `share` of the matches: a copier
        follows its leader every time, chance co-traders take turns."""
        at = _ORDER + 3 * kind
        first, second, tie = self.data[at:at + 3]
        return max(first, second) + tie >= share * (first + second + tie)


class CrossDetector:
    """Matches the entries of every account of one book."""

    def __init__(self, rule: CrossRule) -> None:
        self._rule = rule
        self._recent: dict[str, deque[_Recent]] = {}  # per symbol, in arrival order
        self._by_login: dict[str, dict[int, deque[_Recent]]] = {}  # the same, per symbol and login
        self.entries: dict[int, int] = {}
        self._partners: dict[int, dict[int, _Partner]] = {}
        self.touched: set[int] = set()  # accounts whose matches changed since `take_touched`
        self.scans = 0  # entries matched against the whole window (cost accounting)

    def take_touched(self) -> set[int]:
        """The accounts whose cross-account findings may have changed since the last call."""
        touched, self.touched = self.touched, set()
        return touched

    def on_entry(self, entry: Entry) -> None:
        """Match an entry against other accounts' recent entries on its symbol."""
        window = round(self._rule.window_s * 1000)
        now = entry.time_msc
        login = entry.login
        count = self.entries[login] = self.entries.get(login, 0) + 1
        recent = self._recent.get(entry.symbol)
        if recent is None:
            recent = self._recent[entry.symbol] = deque()
            self._by_login[entry.symbol] = {}
        by_login = self._by_login[entry.symbol]
        while recent and recent[0].entry.time_msc < now - window:
            gone = recent.popleft()
            theirs = by_login[gone.entry.login]
            theirs.popleft()  # the login's oldest: both are in arrival order
            if not theirs:
                del by_login[gone.entry.login]
        mine = _Recent(entry)
        if count <= DISCOVER or count % RESCAN == 0:
            self.scans += 1
            for other in recent:
                self._match(mine, other)
        else:
            table = self._partners.get(login)
            if table:
                if len(table) <= len(by_login):
                    candidates = [by_login[p] for p in table if p in by_login]
                else:
                    candidates = [q for p, q in by_login.items() if p in table]
                for queue in candidates:
                    for other in queue:
                        self._match(mine, other)
        recent.append(mine)
        own = by_login.get(login)
        if own is None:
            own = by_login[login] = deque()
        own.append(mine)

    def _match(self, mine: _Recent, other: _Recent) -> None:
        entry, theirs = mine.entry, other.entry
        login = entry.login
        if theirs.login == login or theirs.login in mine.matched:
            return
        if theirs.side is entry.side:
            kind = _COPY
        else:
            big, small = max(entry.volume, theirs.volume), min(entry.volume, theirs.volume)
            if small <= 0.0 or big / small > self._rule.volume_ratio:
                return
            kind = _HEDGE
        mine.matched.add(theirs.login)
        if login in other.matched:
            return  # that entry already matched one of this account's
        other.matched.add(login)
        now = entry.time_msc
        tie = theirs.time_msc == now
        symbol = entry.symbol
        self._count(login, theirs.login, kind, entry.ticket, symbol, now, 2 if tie else 1)
        self._count(theirs.login, login, kind, theirs.ticket, symbol, now, 2 if tie else 0)
        self.touched.add(login)
        self.touched.add(theirs.login)

    def _count(self, login: int, partner: int, kind: int, ticket: int, symbol: str, now: int,
               order: int) -> None:
        table = self._partners.get(login)
        if table is None:
            table = self._partners[login] = {}
        entry = table.get(partner)
        if entry is None:
            if len(table) >= PARTNERS:
                self._evict(login, table)
            entry = table[partner] = _Partner(ticket, symbol)
        else:
            entry.add_ticket(ticket)
            if entry.symbol and entry.symbol != symbol:
                entry.symbol = ""
        data = entry.data
        count = data[kind] = data[kind] + 1
        data[_ORDER + 3 * kind + order] += 1
        if (count >= self._rule.min_matches and not data[_SINCE + kind] and not entry.symbol
                and self._related(login, partner, count)):
            data[_SINCE + kind] = now

    def _evict(self, login: int, table: dict[int, _Partner]) -> None:
        """Drop partners that matched too few of the account's entries to ever be its pair and,
        while the table is still over half full, the weakest ones: one sort frees room for many
        newcomers, so a scalper's stream of chance co-traders costs little per entry."""
        floor = 0.25 * self.entries.get(login, 0)
        counts = {p: max(e.data[_COPY], e.data[_HEDGE]) for p, e in table.items()}
        ranked = sorted(counts, key=counts.__getitem__)  # stable: ties in table order, as before
        cut = len(ranked) - PARTNERS // 2
        for rank, partner in enumerate(ranked):
            if rank < cut or counts[partner] < floor:
                del table[partner]

    def _related(self, login: int, partner: int, count: int) -> bool:
        """Whether `count` matches link two accounts: at least `min_matches`, at least `share` of
        one side's entries and at least `partner_share` of the other's. Either side may be the
        one that trades more on its own: a leader trades alone too, and a follower mixes its own
        trades in."""
        rule = self._rule
        if count < rule.min_matches:
            return False
        entries = self.entries
        mine, theirs = entries.get(login, 0), entries.get(partner, 0)
        more, fewer = max(mine, theirs), min(mine, theirs)
        return count >= rule.share * fewer and count >= rule.partner_share * more

    def findings(self, login: int) -> tuple[Finding, Finding]:
        """The hedged-pair and syndicate verdicts of one account (one pass over its partners:
        scoring a busy book asks this of hundreds of accounts per second)."""
        table = self._partners.get(login, {})
        least = self._rule.min_matches  # a linked partner needs this many (most have 1)
        # column by column through C-level iteration (`map`, `max`): a Python loop over the
        # partners was most of the cost of scoring an account
        datas = list(map(_DATA, table.values()))
        copy_counts = list(map(_COPY_OF, datas))
        hedge_counts = list(map(_HEDGE_OF, datas))
        best_copy = max(copy_counts, default=0)
        best_hedge = max(hedge_counts, default=0)
        copies: list[int] = []
        hedges: list[int] = []
        if best_copy >= least:
            copies = [p for p, n in zip(table, copy_counts, strict=True) if n >= least]
        if best_hedge >= least:
            hedges = [p for p, n in zip(table, hedge_counts, strict=True) if n >= least]
        return (self._finding(login, _HEDGE, table, hedges, best_hedge),
                self._finding(login, _COPY, table, copies, best_copy))

    def _finding(self, login: int, kind: int, table: dict[int, _Partner], candidates: list[int],
                 count: int) -> Finding:
        """One kind's verdict: `candidates` are the partners with at least `min_matches` matches of
        that kind, `count` the most matches any partner has."""
        rule = self._rule
        entries = self.entries.get(login, 0)
        linked = sorted(
            p for p in candidates
            if not table[p].symbol
            and self._related(login, p, table[p].data[kind])
            and table[p].consistent(kind, rule.leader_share)
        )
        share = count / entries if entries else 0.0
        tickets: tuple[int, ...] = ()
        since = 0
        if linked:
            tickets = table[linked[0]].evidence()
            since = min(table[p].data[_SINCE + kind] or 2**62 for p in linked)
        name, label = ("hedged_pair", Label.HEDGED_PAIR) if kind == _HEDGE else ("syndicate", Label.SYNDICATE)
        return Finding(
            name, label, bool(linked),
            ratio_strength(share, rule.share) * ratio_strength(count, rule.min_matches),
            {"entries": entries, "best_partner_matches": count, "best_partner_share": round(share, 4),
             "linked_accounts": len(linked), "window_s": rule.window_s},
            tickets, tuple(linked), since_msc=since if since < 2**62 else 0,
        )
