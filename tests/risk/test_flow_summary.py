"""The A/B-book advice and the book's toxic-flow summary: money in integer USD cents, sums exact."""

from __future__ import annotations

from typing import Any

import pytest

from veles.risk.flow.desk import flow_summary
from veles.risk.flow.summary import ROUTE_A_AT, pnl_by_label, routing


def _row(login: int, label: str, toxicity: float, flow_pnl: float, profit: float = 0.0, *,
         book: str = "B", usd_rate: float = 1.0) -> dict[str, Any]:
    return {"login": login, "book": book, "flow_label": label, "flow_labels": label, "toxicity": toxicity,
            "flow_pnl": flow_pnl, "profit": profit, "usd_rate": usd_rate}


@pytest.mark.parametrize(("toxicity", "advice"), [(ROUTE_A_AT, "A"), (ROUTE_A_AT - 0.1, "B")])
def test_a_toxic_account_is_advised_to_the_a_book_from_the_threshold(toxicity: float, advice: str) -> None:
    route = routing(_row(1, "scalper", toxicity, 12.34, 0.01))
    assert route == {"advice": advice, "client_result_usd_minor": 1235,
                     "saved_usd_minor": 1235 if advice == "A" else 0}


def test_results_are_cents_in_usd_and_a_loser_or_an_a_book_account_saves_nothing() -> None:
    jpy = routing(_row(1, "news", 80.0, 1000.0, 234.5, usd_rate=0.0064))  # 1,234.5 JPY
    assert jpy == {"advice": "A", "client_result_usd_minor": 790, "saved_usd_minor": 790}
    assert routing(_row(2, "news", 80.0, -5.555))["saved_usd_minor"] == 0
    assert routing(_row(2, "news", 80.0, -5.555))["client_result_usd_minor"] == -556
    assert routing(_row(3, "news", 80.0, 50.0, book="A"))["saved_usd_minor"] == 0
    assert routing(_row(4, "ordinary", 0.0, 50.0))["advice"] == "B"


def test_the_summary_adds_cents_exactly() -> None:
    """0.1 + 0.2 is 0.30000000000000004 in floats; in cents the savings are 30, the labels' sum."""
    rows = [_row(1, "scalper", 60.0, 0.1), _row(2, "scalper", 60.0, 0.2), _row(3, "ordinary", 0.0, -5.555),
            _row(4, "news", 70.0, 3.0, book="A")]
    by_label = pnl_by_label(rows)
    assert by_label == [
        {"label": "scalper", "accounts": 2, "broker_pnl_usd_minor": -30, "saved_usd_minor": 30},
        {"label": "ordinary", "accounts": 1, "broker_pnl_usd_minor": 556, "saved_usd_minor": 0},
    ]
    summary = flow_summary(rows)
    assert summary["a_book_savings_usd_minor"] == 30
    assert all(type(value) is int
               for item in summary["b_book_pnl_by_label"] for key, value in item.items() if key != "label")
    assert [t["login"] for t in summary["top"]] == [4, 1, 2]
    assert summary["top"][1]["saved_usd_minor"] == 10
