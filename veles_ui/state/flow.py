"""Toxic flow in the portal: a trader's profile page and the dashboard's toxic-flow panel.

Both follow the tenant's book like the other live pages (one stream per tab, ended when the tab
leaves the page). The panel is computed from the book's rows in this process (no engine call);
the profile asks the tenant's aggregator, where the detectors run, whenever the account's row
changes, at most every PROFILE_INTERVAL.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import reflex as rx

from actors.wire import Row
from veles.risk.flow.desk import flow_summary
from veles.risk.flow.summary import routing
from veles.services.desk import minor_text
from veles.services.live import TenantReplica, get_live_feed
from veles_ui.format import DASH, sign_color
from veles_ui.state.stream import PortalStream, book_stamp

log = logging.getLogger(__name__)

PROFILE_INTERVAL = 1.0  # seconds between two asks of the aggregator for one page
PANEL_INTERVAL = 1.0  # seconds between two refreshes of the dashboard's panel
DETECTOR_NAMES = {
    "latency_arbitrage": "Latency arbitrage",
    "hedged_pair": "Hedged pair",
    "syndicate": "Syndicate (copy trading)",
    "martingale_grid": "Martingale / grid",
    "news": "News trading",
    "scalping": "Scalping / HFT",
    "sharp_deals": "Sharp deals",
}
LABEL_COLORS = {
    "latency_arbitrage": "tomato", "hedged_pair": "crimson", "syndicate": "purple",
    "martingale_grid": "orange", "news": "amber", "scalper": "cyan", "ordinary": "gray",
}


def label_color(label: str) -> str:
    """Badge colour of a toxic-flow label."""
    return LABEL_COLORS.get(label, "gray")


def label_text(label: str) -> str:
    """A label as a dealer reads it ("latency arbitrage")."""
    return label.replace("_", " ")


def flow_view(row: Row) -> dict[str, str]:
    """An account row's toxic-flow cells: score, primary label and its colour, profile link."""
    label = str(row.get("flow_label", "ordinary"))
    return {"toxicity": f"{float(row.get('toxicity') or 0.0):.1f}", "flow_label": label_text(label),
            "flow_color": label_color(label), "flow_href": f"/flow/{row['login']}"}


def _numbers(numbers: dict[str, Any]) -> str:
    return ", ".join(f"{k.replace('_', ' ')} {v:g}" if isinstance(v, float | int) else f"{k} {v}"
                     for k, v in numbers.items())


def _parse_login(path: str) -> int:
    """The login in '/flow/<login>'; 0 (never a real login) if it is not a number."""
    tail = path.rstrip("/").rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() else 0


class FlowProfileState(PortalStream):
    """One account's toxic flow: score, breakdown, evidence, markouts, holding times, links."""

    account: rx.Field[int] = rx.field(0)
    status: rx.Field[str] = rx.field("loading")  # "found" or "missing" after the first answer
    score: rx.Field[str] = rx.field(DASH)
    label: rx.Field[str] = rx.field("ordinary")
    label_color: rx.Field[str] = rx.field("gray")
    labels: rx.Field[str] = rx.field("")
    margin_risk: rx.Field[str] = rx.field(DASH)
    book: rx.Field[str] = rx.field("")
    advice: rx.Field[str] = rx.field("")
    advice_text: rx.Field[str] = rx.field("")
    saved: rx.Field[str] = rx.field(DASH)
    client_result: rx.Field[str] = rx.field(DASH)
    client_color: rx.Field[str] = rx.field("gray")
    findings: rx.Field[list[dict[str, str]]] = rx.field(default_factory=list)
    evidence: rx.Field[str] = rx.field("")
    markout: rx.Field[list[dict[str, Any]]] = rx.field(default_factory=list)
    holds: rx.Field[list[dict[str, Any]]] = rx.field(default_factory=list)
    linked: rx.Field[list[dict[str, str]]] = rx.field(default_factory=list)
    stamp: rx.Field[str] = rx.field("")

    def _shows(self, path: str) -> bool:
        return path.startswith("/flow/")

    @rx.event
    def load(self) -> None:
        """Page load: forget the previous account so its figures never show under this login."""
        self.account = _parse_login(self.router.url.path)
        self.status = "loading"
        self._show(None, None)

    def _show(self, profile: dict[str, Any] | None, row: Row | None) -> None:
        if profile is None or row is None:
            self.score, self.labels, self.findings, self.markout, self.holds = DASH, "", [], [], []
            self.linked, self.evidence, self.advice, self.advice_text = [], "", "", ""
            self.saved = self.client_result = self.margin_risk = DASH
            return
        self.status = "found"
        self.score = f"{profile['toxicity']:.1f}"
        self.label = str(profile["flow_label"])
        self.label_color = label_color(self.label)
        self.labels = ", ".join(label_text(x) for x in profile["flow_labels"]) or "ordinary"
        self.margin_risk = f"{float(row.get('risk_score') or 0.0):.1f}"
        self.book = str(row.get("book", ""))
        route = routing(row)
        self.advice = route["advice"]
        self.saved = minor_text(route["saved_usd_minor"])
        self.client_result = minor_text(route["client_result_usd_minor"])
        self.client_color = sign_color(route["client_result_usd_minor"])
        if route["advice"] == "A":
            self.advice_text = (f"Route to the A-book: on the B-book since monitoring began the client "
                                f"made ${minor_text(route['client_result_usd_minor'])} against the broker; "
                                f"the A-book would have saved ${minor_text(route['saved_usd_minor'])}.")
        else:
            self.advice_text = "Keep on the B-book: no toxic behaviour at a score of 50 or more."
        self.findings = [
            {"detector": DETECTOR_NAMES.get(f["detector"], f["detector"]), "key": f["detector"],
             "points": f"{f['points']:.1f}", "fired": "fired" if f["fired"] else "no",
             "fired_color": "tomato" if f["fired"] else "gray",
             "strength": f"{f['strength'] * 100:.0f}%", "numbers": _numbers(f["numbers"]),
             "tickets": ", ".join(str(t) for t in f["tickets"]) or DASH}
            for f in sorted(profile["findings"], key=lambda f: -f["points"])
        ]
        self.evidence = ", ".join(str(t) for t in profile["evidence"]) or DASH
        self.markout = [{"horizon": f"{m['horizon_s']} s", "spreads": m["spreads"], "fills": m["fills"]}
                        for m in profile["markout"]]
        self.holds = [{"bin": h["bin"], "trips": h["trips"]} for h in profile["holds"]]
        self.linked = [{"login": str(x), "href": f"/flow/{x}"} for x in profile["linked"]]

    @rx.event(background=True)
    async def stream(self) -> None:
        """Re-ask for the profile whenever the account's row changes, at most every PROFILE_INTERVAL."""
        feed = get_live_feed()
        asked: tuple[int, Row | None] | None = None
        last = 0.0
        async for replica in self._follow():
            async with self:
                login, tenant_id = self.account, self.tenant_id
                self.stamp = book_stamp(replica)
            row = replica.rows.get(login)
            if asked is not None and asked[0] == login and asked[1] is row:
                continue
            await asyncio.sleep(max(0.0, last + PROFILE_INTERVAL - time.monotonic()))
            last = time.monotonic()
            asked = (login, row)
            try:
                profile = await feed.flow_profile(tenant_id, login) if login and row is not None else None
            except Exception:  # the aggregator being restarted: keep the page, ask at the next change
                log.warning("account %s flow profile unavailable", login, exc_info=True)
                asked = None
                continue
            async with self:
                if self.account == login:
                    if profile is None:
                        self.status = "missing"
                    self._show(profile, row)


def flow_panel_view(replica: TenantReplica) -> dict[str, Any]:
    """The toxic-flow panel's fields for one book: the same for every dashboard of the tenant, so
    built once per panel refresh and pushed to all of them (`veles_ui.state.dashboard`)."""
    summary = flow_summary(list(replica.rows.values()), top=8)
    return {
        "toxic": summary["toxic"],
        "accounts": summary["accounts"],
        "savings": minor_text(summary["a_book_savings_usd_minor"]),
        "labels": [{"label": label_text(k), "key": k, "count": str(n), "color": label_color(k)}
                   for k, n in summary["labels"].items() if k != "ordinary"],
        "top": [
            {"login": str(t["login"]), "href": f"/flow/{t['login']}", "score": f"{t['toxicity']:.1f}",
             "label": label_text(str(t["flow_label"])), "color": label_color(str(t["flow_label"])),
             "book": str(t["book"]), "advice": str(t["advice"]), "saved": minor_text(t["saved_usd_minor"])}
            for t in summary["top"]
        ],
        "pnl": [
            {"label": label_text(p["label"]), "key": p["label"], "accounts": str(p["accounts"]),
             "pnl": minor_text(p["broker_pnl_usd_minor"]), "color": sign_color(p["broker_pnl_usd_minor"]),
             "saved": minor_text(p["saved_usd_minor"])}
            for p in summary["b_book_pnl_by_label"]
        ],
        "pnl_chart": [{"label": label_text(p["label"]), "B-book P/L": p["broker_pnl_usd_minor"] / 100}
                      for p in summary["b_book_pnl_by_label"]],
    }


class FlowDeskState(rx.State):
    """The dashboard's toxic-flow panel: accounts per label, the most toxic accounts with their
    A/B-book advice, and the B-book's P/L by label. Its fields are pushed by the dashboard's
    stream, at most once per PANEL_INTERVAL (the panel ranks the whole book, and labels move in
    seconds, not ticks), to every dashboard of the tenant at once (`veles_ui.state.tenant_push`)."""

    toxic: rx.Field[int] = rx.field(0)
    accounts: rx.Field[int] = rx.field(0)
    savings: rx.Field[str] = rx.field(DASH)
    labels: rx.Field[list[dict[str, str]]] = rx.field(default_factory=list)
    top: rx.Field[list[dict[str, str]]] = rx.field(default_factory=list)
    pnl: rx.Field[list[dict[str, str]]] = rx.field(default_factory=list)
    pnl_chart: rx.Field[list[dict[str, Any]]] = rx.field(default_factory=list)
