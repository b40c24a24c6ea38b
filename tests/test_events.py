"""Merging batches for a consumer that fell behind: latest prices win, no deal is lost."""

from __future__ import annotations

from veles.risk.events import Batch, Deal, DealKind, Quote, merge_batches


def test_merge_keeps_latest_quote_per_symbol_and_every_deal_in_order() -> None:
    def deal(ticket: int) -> Deal:
        return Deal(ticket=ticket, login=1, kind=DealKind.BALANCE, time_msc=ticket, amount=10.0)

    batches = [
        Batch("c", 1, 100.0, (Quote("EURUSD", 1.1, 1.1001), Quote("USDJPY", 150.0, 150.01)), (deal(1),)),
        Batch("c", 2, 100.25, (Quote("EURUSD", 1.2, 1.2001),), (deal(2), deal(3))),
        Batch("c", 3, 100.5, (), ()),
    ]
    merged = merge_batches(batches)
    assert merged.seq == 3
    assert merged.sent_at == 100.0  # latency counts from the oldest batch merged
    assert {q.symbol: q.bid for q in merged.quotes} == {"EURUSD": 1.2, "USDJPY": 150.0}
    assert [d.ticket for d in merged.deals] == [1, 2, 3]
    assert merge_batches(batches[:1]) is batches[0]
