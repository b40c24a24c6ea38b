"""Dealers working the accounts list: sorting by a figure, paging, filtering, opening one account.

The list page (/accounts) streams the visible page with the book; a click on a column header, a
pager button or the filter box is an event the tab sends, answered by the delta that carries the
new choice (`accounts: sort`, `accounts: page`, `accounts: filter`). Opening an account is a new
page whose figures come from the account's own actor (`accounts: open account`, until the page
says found). Think times are the seconds a person reads a page before the next click.
"""

from __future__ import annotations

import random
from typing import Any

from locust import User, between, task
from portal_session import PortalTab, timed
from sign_in import access_token

from veles.bench.dashboard_sockets import field_key
from veles_ui.state.accounts import PAGE_SIZE, SORTABLE, AccountDetailState, AccountsState

SCENARIO = "accounts"
_LIST = AccountsState.get_full_name()
_DETAIL = AccountDetailState.get_full_name()
_SORT, _DESCENDING = field_key("sort"), field_key("descending")
_OFFSET, _TOTAL, _QUERY = field_key("offset"), field_key("total"), field_key("query")
_ROWS, _STATUS = field_key("rows"), field_key("status")


def _delta(update: dict[str, Any], state: str) -> dict[str, Any]:
    delta = (update.get("delta") or {}).get(state)
    return delta if isinstance(delta, dict) else {}


class AccountDealer(User):
    """A dealer on the accounts page."""

    weight = 4
    wait_time = between(3, 15)

    tab: PortalTab | None = None

    def on_start(self) -> None:
        assert self.host is not None
        self.tab = PortalTab(self.environment, self.host, access_token(self.host), "/accounts", None)
        self.logins: list[int] = []
        self.offset = self.total = 0
        self.query = ""
        self.tab.listen(self._follow)
        timed(self.environment, "SOCKET", f"{SCENARIO}: open list", self.tab.open)

    def _open_tab(self) -> PortalTab:
        assert self.tab is not None, "on_start opens the tab"
        return self.tab

    def _follow(self, update: dict[str, Any]) -> None:
        """Keeps what the page shows: its logins, offset and how many accounts match."""
        delta = _delta(update, _LIST)
        if isinstance(rows := delta.get(_ROWS), list):
            self.logins = [int(row["login"]) for row in rows if str(row.get("login", "")).isdigit()]
        self.offset = int(delta.get(_OFFSET, self.offset))
        self.total = int(delta.get(_TOTAL, self.total))

    @task(3)
    def sort(self) -> None:
        """A click on a column header: answered by the delta that sets the key or flips the order."""
        key = random.choice(sorted(SORTABLE))

        def answered(update: dict[str, Any]) -> bool:
            delta = _delta(update, _LIST)
            return delta.get(_SORT) == key or _DESCENDING in delta

        timed(self.environment, "SOCKET", f"{SCENARIO}: sort",
              lambda: self._open_tab().act(f"{_LIST}.sort_by", {"key": key}, answered))

    @task(2)
    def page(self) -> None:
        """The next page, or the previous one on the last page: answered by the new offset. A book
        of one page has no pager to click."""
        if self.total <= PAGE_SIZE:
            return
        handler = "next_page" if self.offset + PAGE_SIZE < self.total else "prev_page"
        timed(self.environment, "SOCKET", f"{SCENARIO}: page",
              lambda: self._open_tab().act(f"{_LIST}.{handler}", {}, lambda u: _OFFSET in _delta(u, _LIST)))

    @task(1)
    def filter(self) -> None:
        """Types the start of a listed login into the filter box, or clears the filter it set."""
        query = "" if self.query or not self.logins else str(random.choice(self.logins))[:4]
        if query == self.query:
            return
        self.query = query
        timed(self.environment, "SOCKET", f"{SCENARIO}: filter",
              lambda: self._open_tab().act(f"{_LIST}.set_query", {"query": query},
                                   lambda u: _delta(u, _LIST).get(_QUERY) == query))

    @task(2)
    def open_account(self) -> None:
        """Opens one listed account in a new page and waits until it shows the account's figures."""
        if not self.logins:
            return
        assert self.host is not None
        login = random.choice(self.logins)
        detail = PortalTab(self.environment, self.host, access_token(self.host), f"/accounts/{login}", None,
                           ready=lambda u: _delta(u, _DETAIL).get(_STATUS) == "found")
        try:
            timed(self.environment, "SOCKET", f"{SCENARIO}: open account", detail.open)
        finally:
            detail.close()

    def on_stop(self) -> None:
        if self.tab is not None:
            self.tab.close()
