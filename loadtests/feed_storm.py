"""A feed storm: a burst of deals on many accounts at once, through the trade server itself.

Against `veles demo --via-webapi` (what `make loadtest` runs), the simulated broker sits behind
the fake MT5 Web API; this user signs in there as the manager (MT5's challenge-response,
veles.mt5.webapi.auth) and books a deposit on STORM_ACCOUNTS accounts as fast as the server takes
them (`trade/balance`, one kept-alive connection as a manager API session is). The deals reach the
engine the way a real server's do (the gateway's deal polling), every touched account is
recomputed, and the book's diff to every open dashboard and integration is that much larger: the
dashboards' `gateway → client` figures during a storm are what it measures. Each call is
`storm: trade/balance`, the whole burst `storm: burst`. Storms come minutes apart.

Runs only when VELES_LOADTEST_MT5_URL, VELES_LOADTEST_MT5_LOGIN and VELES_LOADTEST_MT5_PASSWORD
say where the server is (the locustfile leaves it out of the mix otherwise).
"""

from __future__ import annotations

import os
import random
import time

from locust import HttpUser, between, task
from sign_in import access_token

from veles.mt5.webapi.auth import new_cli_rand, srv_rand_answer

SCENARIO = "storm"
STORM_ACCOUNTS = 200
ENV = ("VELES_LOADTEST_MT5_URL", "VELES_LOADTEST_MT5_LOGIN", "VELES_LOADTEST_MT5_PASSWORD")


def configured() -> bool:
    """Whether the environment says where the trade server is."""
    return all(os.environ.get(name) for name in ENV)


class FeedStorm(HttpUser):
    """One manager session that now and then deposits on many accounts at once."""

    fixed_count = 1  # one storm maker, however many users the run has
    wait_time = between(60, 120)

    def on_start(self) -> None:
        assert self.host is not None
        self.portal = self.host
        self.server, login, self.password = (os.environ[name] for name in ENV)
        self.login = int(login)
        self.logins: list[int] = []

    def _sign_in(self) -> None:
        """MT5's manager authentication on this user's connection (the server keys the session by it)."""
        start = self.client.get(f"{self.server}/api/auth/start", name=f"{SCENARIO}: auth", params={
            "version": 3470, "agent": "veles-loadtest", "login": self.login, "type": "manager"}).json()
        reply = self.client.get(f"{self.server}/api/auth/answer", name=f"{SCENARIO}: auth", params={
            "srv_rand_answer": srv_rand_answer(self.password, start.get("srv_rand")),
            "cli_rand": new_cli_rand().hex()}).json()
        if not str(reply.get("retcode", "")).startswith("0 "):
            raise RuntimeError(f"the trade server refused the manager: {reply.get('retcode')}")

    def _accounts(self) -> list[int]:
        """The broker's logins, as the portal's API lists them (none while it answers an error)."""
        with self.client.get(f"{self.portal}/api/v1/accounts", name=f"{SCENARIO}: accounts",
                             params={"limit": 500}, catch_response=True,
                             headers={"Authorization": f"Bearer {access_token(self.portal)}"}) as page:
            if not page.ok:
                page.failure(f"{page.status_code} {page.text[:200]}")
                return []
            return [int(row["login"]) for row in page.json()["accounts"]]

    @task
    def storm(self) -> None:
        """Sign in (again: a session may have been dropped meanwhile), then the burst."""
        self._sign_in()
        self.logins = self.logins or self._accounts()
        started = time.perf_counter()
        failed: Exception | None = None
        if not self.logins:  # the book not published yet, say: a storm of nothing is a failure
            failed = RuntimeError("no accounts to storm: the portal listed none")
        for login in random.sample(self.logins, min(STORM_ACCOUNTS, len(self.logins))):
            with self.client.get(f"{self.server}/api/trade/balance", name=f"{SCENARIO}: trade/balance",
                                 catch_response=True, params={
                                     "login": login, "type": 2, "comment": "load test storm",
                                     "balance": f"{random.choice((100, 250, 500, 1000)):.2f}"}) as answer:
                retcode = str(answer.json().get("retcode", "")) if answer.ok else str(answer.status_code)
                if not retcode.startswith("0 "):
                    answer.failure(f"trade/balance {login}: {retcode}")
                    failed = failed or RuntimeError(retcode)
        self.environment.events.request.fire(request_type="STORM", name=f"{SCENARIO}: burst",
                                             response_time=(time.perf_counter() - started) * 1000,
                                             response_length=0, exception=failed, context={})
