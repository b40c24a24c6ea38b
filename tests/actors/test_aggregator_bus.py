"""The aggregator with its Redis bus away: the book goes on and no alert is lost.

Found by `veles chaos`: Redis restarted under the engine made the aggregator's publish raise, which
ended its publishing loop for good (every replica's book froze until the aggregator restarted) and
dropped the rest of an alert batch from the list consumers poll over Ray.
"""

from __future__ import annotations

import dataclasses
import socket

from actors.risk_aggregator import BookPublisher
from tests.actors.support import account_figures


def _closed_port() -> int:
    """A port of 127.0.0.1 nothing listens on: a Redis server that is down."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_alerts_and_diffs_outlive_a_redis_bus_that_is_down() -> None:
    publisher = BookPublisher(tenant_id=1, redis_url=f"redis://127.0.0.1:{_closed_port()}/0")
    healthy = dataclasses.replace(account_figures(), state="ok", margin_level=400.0)
    stopped = dataclasses.replace(healthy, state="stop_out", margin_level=40.0)
    publisher.apply([healthy], sent_at=1.0)
    raised = publisher.apply([stopped], sent_at=2.0)
    assert len(raised) == 2

    await publisher.announce(raised)  # raised ConnectionError before the fix

    assert [a["rule_id"] for a in publisher.recent_alerts] == [a.rule_id for a in raised]
    assert [a["seq"] for a in publisher.recent_alerts] == [1, 2]
    diff = await publisher.publish()  # raised too, which ended the aggregator's publishing loop
    assert diff is not None
    assert diff["version"] == 1
    assert (await publisher.diffs_since(0, timeout=0.1)) == [diff]  # Ray consumers still get it
    assert publisher.bus_failures == 3  # two alerts and one diff not published, counted
