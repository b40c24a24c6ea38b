"""Locust: the standard mix of Veles' users against a running portal.

    locust -f loadtests/locustfile.py --host http://localhost:3000 [--thresholds FILE] [UserClass ...]

Each user class is a scenario in a module of its own (think times are people's, or pollers'):
dealers on live dashboards (dashboard_dealers), dealers on the accounts list (account_dealers),
API integrators (integrators), tenant admins (admins), report requesters (report_requesters),
visitors of the sign-in page (visitors) and, when a trade server is given, one feed storm maker
(feed_storm). Their weights make the standard mix; name classes on the
command line to run some only. Book updates are timed from their gateway stamp and reported as
BOOK samples. At the end each scenario is judged against thresholds.toml (limits.py, verdicts.py) and the
exit code says whether every limit held. `make loadtest` runs this mix against a demo of its own.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import gevent
import locust.runners
from locust import events
from locust.argument_parser import LocustArgumentParser
from locust.env import Environment

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the scenario modules beside this file

import feed_storm
import limits
import verdicts
from account_dealers import AccountDealer
from admins import TenantAdmin
from dashboard_dealers import DashboardDealer
from integrators import ApiIntegrator
from report_requesters import ReportRequester
from visitors import PortalVisitor

if feed_storm.configured():  # a trade server to storm (make loadtest's demo serves one)
    from feed_storm import FeedStorm  # noqa: F401

# The imports above (Reflex's state classes, for the portal's names) can take tens of seconds on a
# busy machine, in which gevent's loop clock stood still: a --run-time timer started from that stale
# clock fires at once. Bring the clock to now before Locust starts its timers.
gevent.get_hub().loop.update_now()
# A worker that misses 3 one-second heartbeats is dropped by the master, and the run stops when the
# last one goes. On 2 cores shared at load 20-25 a worker starting its users (sockets, sign-in)
# went unscheduled that long; 30 s keeps such a worker, and a dead one is still noticed.
locust.runners.HEARTBEAT_LIVENESS = 30

__all__ = ["AccountDealer", "ApiIntegrator", "DashboardDealer", "PortalVisitor", "ReportRequester",
           "TenantAdmin"]


@events.init_command_line_parser.add_listener
def _arguments(parser: LocustArgumentParser) -> None:
    parser.add_argument("--thresholds", default=str(limits.DEFAULT_FILE),
                        help="TOML file of per-scenario limits (p95_ms, p99_ms, max_error_ratio)")


@events.init.add_listener
def _judge_at_the_end(environment: Environment, **_kwargs: Any) -> None:
    assert environment.parsed_options is not None
    verdicts.register(environment, Path(environment.parsed_options.thresholds))
