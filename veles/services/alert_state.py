"""Acknowledged, resolved: the alert state changes people make, told to every open alerts page and
top-bar bell of the tenant.

Why. The alerts page applies the alert events the engine numbers (raised, repeated, cleared) to
the list it holds and reads the database only when an event needs it (`alert_page`). A dealer's
acknowledgement or resolution is no engine event: without this, a second dealer's open page kept
showing an alert unacknowledged until reloaded, and two dealers could both act on it.

After the change is committed, its maker (the portal's alerts page, the REST API) calls
`publish_alert_states` off the event loop: with REDIS_URL it publishes on the tenant's
`alert-state:<tenant>` channel (the deployment's prefix, as every channel), which every web
process's `AlertWatch` follows for its tabs; without Redis it hands the change to this process's
`AlertWatch` directly. A publish that fails is logged and counted (`publish_failures`), never
raised: the change is stored, and other tabs see it at their next reload.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import datetime
from functools import lru_cache

import redis

from actors.wire import Row
from veles.config import Settings, get_settings, redis_name
from veles.services.alert_watch import STATE_KIND, AlertWatch, alert_state_topic, get_alert_watch
from veles.services.alerts import AlertView

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT_S = 2.0  # a Redis that does not answer within this fails the publish, not the change

_failures = 0
_failures_lock = threading.Lock()


def publish_failures() -> int:
    """State changes this process stored but could not publish."""
    return _failures


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when is not None else None


def state_message(view: AlertView) -> Row:
    """An alert's state after a person changed it, as pages and bells receive it. `seq` is the
    number of the engine's latest event on the alert when it changed: a page that has applied a
    different one cannot apply this exactly and reloads (`AlertPage.applied`)."""
    return {"kind": STATE_KIND, "id": view.id, "seq": view.seq, "state": view.state.value,
            "severity": view.severity.value, "acknowledged_by": view.acknowledged_by,
            "acknowledged_at": _iso(view.acknowledged_at), "resolved_at": _iso(view.resolved_at)}


@lru_cache(maxsize=4)
def _client(url: str) -> redis.Redis:
    """One synchronous client per Redis URL for the process (thread-safe, its own pool)."""
    return redis.Redis.from_url(url, socket_timeout=PUBLISH_TIMEOUT_S,
                                socket_connect_timeout=PUBLISH_TIMEOUT_S)


def publish_alert_states(
    tenant_id: int, views: list[AlertView], *, settings: Settings | None = None,
    watch: AlertWatch | None = None,
) -> int:
    """Tell the tenant's pages and bells these alerts' new state; how many were told. Call it
    after the commit. Blocking with Redis (a network call): run it in a thread, never on the
    event loop. Never raises: a failure is logged and counted."""
    global _failures
    settings = settings or get_settings()
    messages = [state_message(view) for view in views]
    try:
        if settings.redis_url:
            client = _client(settings.redis_url)
            channel = redis_name(settings.redis_prefix, alert_state_topic(tenant_id))
            for message in messages:
                client.publish(channel, json.dumps(message, separators=(",", ":")))
        else:
            (watch or get_alert_watch()).deliver_states(tenant_id, messages)
    except Exception as exc:  # stored all the same: other tabs see it at their next reload
        with _failures_lock:
            _failures += len(messages)
        log.warning("tenant %s: state of alerts %s stored but not published: %s", tenant_id,
                    [view.id for view in views], exc)
        return 0
    return len(messages)
