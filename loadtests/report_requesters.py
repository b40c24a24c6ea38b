"""Risk managers asking for reports: queue one, wait for the worker, download it.

`reports: request` is the queueing call; `reports: until ready` is the time from the request to
the status ready, polled every POLL_S as a client would (a failed report or one still not ready
after READY_TIMEOUT_S is a failure); `reports: download` fetches the file. A person asks for a
report every few minutes.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta

import gevent
from locust import between, task
from rest_user import RestUser

POLL_S = 1.0
READY_TIMEOUT_S = 120.0
KINDS = (("daily_risk", "pdf"), ("exposure", "xlsx"), ("alerts_log", "pdf"), ("exposure", "pdf"))


class ReportRequester(RestUser):
    """One risk manager requesting reports."""

    weight = 1
    wait_time = between(60, 180)
    scenario = "reports"

    @task
    def report(self) -> None:
        kind, file_format = random.choice(KINDS)
        end = datetime.now(UTC)
        body = {"type": kind, "format": file_format, "start": (end - timedelta(hours=24)).isoformat(),
                "end": end.isoformat()}
        started = time.perf_counter()
        queued = self.call("POST", "/api/v1/reports", "POST /api/v1/reports", json=body)
        if queued is None:
            return
        status, error = queued["status"], None
        while status in ("queued", "running") and time.perf_counter() - started < READY_TIMEOUT_S:
            gevent.sleep(POLL_S)
            polled = self.call("GET", f"/api/v1/reports/{queued['id']}", "GET /api/v1/reports/{id}")
            if polled is not None:
                status, error = polled["status"], polled.get("error")
        failure = None if status == "ready" else RuntimeError(f"{kind}/{file_format}: {status} {error or ''}")
        self.environment.events.request.fire(request_type="REPORT", name=f"{self.scenario}: until ready",
                                             response_time=(time.perf_counter() - started) * 1000,
                                             response_length=0, exception=failure, context={})
        if failure is None:
            with self.client.get(f"/api/v1/reports/{queued['id']}/download", catch_response=True,
                                 name=f"{self.scenario}: download",
                                 headers={"Authorization": f"Bearer {self.token}"}) as got:
                if got.status_code != 200 or not got.content:
                    # no content at all (None) when the connection broke, e.g. users stopped mid-download
                    got.failure(f"{got.status_code}: {len(got.content or b'')} bytes")
