"""Dealers watching the live dashboard, the load the portal is sized by.

A dealer opens the dashboard at the start of a shift and leaves it open: the book streams to the
tab four times a second, each update reported as `dashboard: gateway → client` (its age from the
gateway, in the BOOK samples). After watching for minutes (the think time, before the task rather
than after it, so a fresh tab is watched first) the dealer reloads the tab: a new session whose
time to its first figures is `dashboard open: first figures`.
"""

from __future__ import annotations

import random

import gevent
from locust import User, constant, task
from portal_session import PortalTab, timed
from sign_in import access_token

SCENARIO = "dashboard"
BOOK_NAME = f"{SCENARIO}: gateway → client"


class DashboardDealer(User):
    """One dealer with one dashboard tab open."""

    weight = 10
    wait_time = constant(0)  # the task itself watches first
    watch_s = (60.0, 180.0)

    tab: PortalTab | None = None

    def on_start(self) -> None:
        self._open()

    def _open(self) -> None:
        assert self.host is not None
        tab = PortalTab(self.environment, self.host, access_token(self.host), "/dashboard", BOOK_NAME)
        self.tab = tab
        timed(self.environment, "SOCKET", f"{SCENARIO} open: first figures", tab.open)

    @task
    def reload(self) -> None:
        """Watch a while, then F5: the old session goes, a new one has to show figures again."""
        gevent.sleep(random.uniform(*self.watch_s))
        if self.tab is not None:
            self.tab.close()
        self._open()

    def on_stop(self) -> None:
        if self.tab is not None:
            self.tab.close()
