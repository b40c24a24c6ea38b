"""The desk's view of the whole book's toxic flow: accounts per label, the B-book's P/L by label,
the most toxic accounts with their A/B-book advice. Pure: computed from the book's rows."""

from __future__ import annotations

from collections import Counter
from typing import Any

from veles.risk.flow.summary import pnl_by_label, routing

TOP = 10  # most toxic accounts listed


def flow_summary(rows: list[dict[str, Any]], top: int = TOP) -> dict[str, Any]:
    """Counts per primary label, B-book P/L per label (USD cents, the broker's side), the A-book
    savings the advice adds up to (USD cents), and the `top` accounts by toxicity with their
    advice."""
    counts = Counter(str(r.get("flow_label", "ordinary")) for r in rows)
    by_label = pnl_by_label(rows)
    ranked = sorted((r for r in rows if float(r.get("toxicity") or 0.0) > 0.0),
                    key=lambda r: (-float(r["toxicity"]), r["login"]))[:top]
    return {
        "accounts": len(rows),
        "labels": dict(sorted(counts.items())),
        "toxic": sum(n for label, n in counts.items() if label != "ordinary"),
        "b_book_pnl_by_label": by_label,
        "a_book_savings_usd_minor": sum(item["saved_usd_minor"] for item in by_label),
        "top": [
            {"login": r["login"], "toxicity": r["toxicity"], "flow_label": r.get("flow_label", "ordinary"),
             "flow_labels": r.get("flow_labels", "ordinary"), "book": r.get("book"), **routing(r)}
            for r in ranked
        ],
    }
