"""What screens show of an account's flow: row fields, a profile, and the A/B-book advice.

The book's rows carry three small fields per account (`row_fields`: score, primary label, every
label) so the accounts table can sort and filter on them; the rest (breakdown, evidence, markout
curve, holding times, linked accounts) is asked for one account at a time (`profile`), as a
trader page needs it.

A/B-book advice. A B-book broker takes the other side of its client; routing the client to the
A-book passes its trades to a liquidity provider. For a toxic account (any label, score at or
above `ROUTE_A_AT`) the advice is the A-book, and what that "would have saved" is the client's
net result against the broker on the B-book since monitoring started: its closed trades'
results plus its floating P/L, in USD, when positive (a toxic account that lost has cost the
B-book nothing). Commissions and the A-book's own costs (LP spread, fees) are not modelled.

Money is in integer minor units (USD cents, `*_usd_minor`, as the rest of the API's money): each
account's result is rounded to cents once (veles.risk.money.to_minor) and the sums are of
integers, so a label's total is exactly the sum of its accounts' and the book's savings exactly
the sum of the labels'.
"""

from __future__ import annotations

from typing import Any

from veles.risk.flow.evidence import Label
from veles.risk.flow.latency import HORIZONS_S
from veles.risk.flow.monitor import HOLD_BINS_S, FlowMonitor
from veles.risk.flow.scoring import Toxicity
from veles.risk.money import to_minor

#: The score at or above which a labelled account is advised to the A-book.
ROUTE_A_AT = 50.0
#: The row fields `row_fields` adds to an account's on-screen row.
FLOW_FIELDS = ("toxicity", "flow_label", "flow_labels", "flow_pnl")


def row_fields(tox: Toxicity, realized: float) -> dict[str, Any]:
    """The account row's flow fields: score, primary label, every label (comma-separated,
    "ordinary" when none) and the client's closed result while monitored (deposit currency)."""
    return {
        "toxicity": tox.score,
        "flow_label": tox.primary.value,
        "flow_labels": ",".join(label.value for label in tox.labels) or Label.ORDINARY.value,
        "flow_pnl": round(realized, 2),
    }


def empty_fields() -> dict[str, Any]:
    """The flow fields of an account that has not traded while monitored."""
    return {"toxicity": 0.0, "flow_label": Label.ORDINARY.value, "flow_labels": Label.ORDINARY.value,
            "flow_pnl": 0.0}


def routing(row: dict[str, Any]) -> dict[str, Any]:
    """The A/B-book advice for one account row (with its flow fields): `advice` "A" or "B",
    `client_result_usd_minor` (closed while monitored + floating, USD cents) and
    `saved_usd_minor`: what the A-book would have saved the broker (USD cents), 0 unless the
    account is on the B-book, advised to the A-book and won."""
    rate = float(row.get("usd_rate") or 0.0)
    result = to_minor((float(row.get("flow_pnl") or 0.0) + float(row.get("profit") or 0.0)) * rate)
    toxic = row.get("flow_label", Label.ORDINARY.value) != Label.ORDINARY.value
    advice = "A" if toxic and float(row.get("toxicity") or 0.0) >= ROUTE_A_AT else "B"
    saved = max(0, result) if advice == "A" and row.get("book") == "B" else 0
    return {"advice": advice, "client_result_usd_minor": result, "saved_usd_minor": saved}


def pnl_by_label(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The B-book's P/L (the broker's side: minus the clients' results, USD cents) per primary
    label, with the accounts behind each and what the A-book advice would have saved (cents)."""
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row.get("book") != "B":
            continue
        label = row.get("flow_label") or Label.ORDINARY.value
        route = routing(row)
        item = out.setdefault(label, {"label": label, "accounts": 0, "broker_pnl_usd_minor": 0,
                                      "saved_usd_minor": 0})
        item["accounts"] += 1
        item["broker_pnl_usd_minor"] -= route["client_result_usd_minor"]
        item["saved_usd_minor"] += route["saved_usd_minor"]
    return sorted(out.values(), key=lambda item: (item["broker_pnl_usd_minor"], item["label"]))


def profile(monitor: FlowMonitor, login: int) -> dict[str, Any]:
    """Everything a trader page shows of one account's flow (plain JSON-ready values)."""
    tox = monitor.toxicity(login)
    flow = monitor.account(login)
    points = tox.breakdown()
    findings = [
        {"detector": f.detector, "label": f.label.value if f.label else None, "fired": f.fired,
         "strength": round(f.strength, 3), "points": points[f.detector],
         "numbers": dict(f.numbers), "tickets": list(f.tickets), "linked": list(f.linked),
         "since_msc": f.since_msc}
        for f in tox.findings
    ]
    latency = flow.latency
    markout = [
        {"horizon_s": h, "fills": latency.markout_n[i],
         "spreads": round(latency.markout_sum[i] / latency.markout_n[i], 3) if latency.markout_n[i] else 0.0}
        for i, h in enumerate(HORIZONS_S)
    ]
    edges = (0, *HOLD_BINS_S)
    names = [f"{lo}-{hi} s" for lo, hi in zip(edges, HOLD_BINS_S, strict=False)] + [f"> {HOLD_BINS_S[-1]} s"]
    linked = sorted({other for f in tox.findings for other in f.linked})
    return {
        "login": login,
        "toxicity": tox.score,
        "flow_label": tox.primary.value,
        "flow_labels": [label.value for label in tox.labels],
        "since_msc": tox.since_msc,
        "findings": findings,
        "evidence": sorted({t for f in tox.findings if f.fired for t in f.tickets}),
        "markout": markout,
        "holds": [{"bin": name, "trips": n} for name, n in zip(names, flow.holds, strict=True)],
        "linked": linked,
        "realized": round(flow.realized, 2),
    }
