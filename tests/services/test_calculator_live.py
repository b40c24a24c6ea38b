"""A live account loaded into the what-if calculator: before any change the calculator gives the
engine's own figures; the dealer's changes (volumes, prices) apply, and bad ones name the entry."""

from __future__ import annotations

import pytest

from veles.bench.stress import simulated_book
from veles.risk.account import AccountState
from veles.risk.calculator import CalcError
from veles.services.calculator import apply_edits, document_of, what_if


def _accounts() -> list[tuple[dict, object]]:
    snapshots, symbols, quotes = simulated_book(60, 5)
    return [(document_of(s, symbols, quotes), AccountState(s, symbols, quotes).figures())
            for s in snapshots if s.positions]


def test_a_loaded_account_gives_the_engines_figures() -> None:
    checked = 0
    for document, figures in _accounts():
        result = what_if(document).account
        assert (result.balance, result.equity, result.margin, result.free_margin) == pytest.approx(
            (figures.balance, figures.equity, figures.margin, figures.free_margin), abs=0.005)  # type: ignore[attr-defined]
        assert result.state == figures.state  # type: ignore[attr-defined]
        checked += 1
    assert checked >= 10


def test_changes_apply_and_bad_ones_name_the_entry() -> None:
    document = next(d for d, _ in _accounts() if len(d["positions"]) >= 2)
    first, second = document["positions"][:2]
    symbol = first["symbol"]
    bid, ask = document["quotes"][symbol]["bid"], document["quotes"][symbol]["ask"]
    edited = apply_edits(document, {f"volume-{first['ticket']}": "0", f"volume-{second['ticket']}": "0.5",
                                    f"bid-{symbol}": str(bid * 0.9), f"ask-{symbol}": str(ask * 0.9)})
    assert [p["ticket"] for p in edited["positions"]] == [p["ticket"] for p in document["positions"][1:]]
    assert edited["positions"][0]["volume"] == 0.5
    assert edited["quotes"][symbol] == {"bid": pytest.approx(bid * 0.9), "ask": pytest.approx(ask * 0.9)}
    assert document["positions"][0] is first  # the loaded document itself is left as it was
    what_if(edited)
    bad_volume = rf"positions\[ticket {first['ticket']}\]\.volume: 'lots' is not a number"
    with pytest.raises(CalcError, match=bad_volume):
        apply_edits(document, {f"volume-{first['ticket']}": "lots"})
    with pytest.raises(CalcError, match=rf"quotes\.{symbol}\.bid: must be > 0"):
        apply_edits(document, {f"bid-{symbol}": "0"})
    with pytest.raises(CalcError, match=rf"quotes\.{symbol}: bid .* is above ask"):
        apply_edits(document, {f"bid-{symbol}": str(ask * 2)})
    with pytest.raises(CalcError, match="must be >= 0"):
        apply_edits(document, {f"volume-{first['ticket']}": "-1"})
