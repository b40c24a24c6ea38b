"""One delta per tenant and update, encoded once and sent to every tab of the tenant this backend
worker serves.

Reflex sends a background task's update by holding the tab's state (with Redis as the state
manager: a lease, a read and a write of it), diffing it and JSON-encoding the delta for that tab
alone. The dashboard's figures are the same for every dealer of a tenant, so a profile of one
worker under 100 dashboards spent most of its time holding, diffing and encoding the same delta
once per tab. Here the tabs of a tenant join a socket.io room (python-socketio's in-process
manager: this worker's own sockets), and the first tab stream that sees a new update has the delta
built once and emitted to the room, which python-socketio encodes once for all of them.

What this gives up: those figures live in the tabs' browsers, not in their Reflex state. Nothing
on the server reads them back; a reloaded tab hydrates with the page's defaults and is sent the
current figures by its stream at once (`send`), as a new tab is.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from reflex.state import StateUpdate
from reflex.utils.prerequisites import get_and_validate_app
from reflex_base.constants.event import SocketEvent
from reflex_base.constants.state import FIELD_MARKER

Delta = Mapping[str, Mapping[str, Any]]
_EVENT = str(SocketEvent.EVENT)
_KINDS: set[str] = set()  # every TenantRooms' kind: `leave_all` takes a socket out of all of them


def field_key(name: str) -> str:
    """How a state field is named inside a delta (Reflex's own naming)."""
    return f"{name}{FIELD_MARKER}"


def _namespace() -> Any:
    """The portal's socket.io namespace (Reflex's `/_event`); None before the app has one."""
    return get_and_validate_app().app.event_namespace


class TenantRooms:
    """A socket.io room per tenant for one kind of push (`kind`). Which update a room was last
    sent is the pushed state's own (`TenantDesk.claim`), not kept here a second time."""

    def __init__(self, kind: str) -> None:
        self._kind = kind
        _KINDS.add(kind)
        # per socket in a room, its membership (`join`); bounded by the live streams, each of which
        # leaves when it ends
        self._owners: dict[str, object] = {}

    def room(self, tenant_id: int) -> str:
        """The room of `tenant_id`'s tabs (in this process only: never a Redis channel)."""
        return f"{self._kind}:{tenant_id}"

    async def join(self, sid: str, tenant_id: int) -> object:
        """Put the socket `sid` in the tenant's room: it gets every push to the tenant from now on.
        The handle returned names this membership: a tab that reloads the page within the same
        socket joins again before its older stream notices it is superseded and leaves, and only
        the newest membership's `leave` takes the socket out."""
        handle = object()
        self._owners[sid] = handle
        if (namespace := _namespace()) is not None:
            await namespace.enter_room(sid, self.room(tenant_id))
        return handle

    async def leave(self, sid: str, tenant_id: int, handle: object) -> None:
        """Take `sid` out of the room if `handle` is still its membership (a socket already gone
        has left every room: nothing to do)."""
        if self._owners.get(sid) is not handle:
            return
        del self._owners[sid]
        if (namespace := _namespace()) is not None:
            with contextlib.suppress(KeyError, ValueError):
                await namespace.leave_room(sid, self.room(tenant_id))

    async def broadcast(self, tenant_id: int, delta: Delta) -> None:
        """Emit `delta` to every tab in the tenant's room: one encoding for all of them."""
        if (namespace := _namespace()) is not None:
            await namespace.emit(_EVENT, StateUpdate(delta=delta), room=self.room(tenant_id))


async def send(sid: str, delta: Delta) -> None:
    """Emit `delta` to the one socket `sid` (a tab that has just joined: it missed the last push)."""
    if (namespace := _namespace()) is not None:
        await namespace.emit(_EVENT, StateUpdate(delta=delta), to=sid)


async def leave_all(sid: str) -> None:
    """Take the socket `sid` out of every tenant room: its session ended, and no push may reach it
    after (the streams that put it there notice only at their next look at the tab's state)."""
    if (namespace := _namespace()) is None:
        return
    for room in list(namespace.rooms(sid)):
        if isinstance(room, str) and room.split(":", 1)[0] in _KINDS:
            with contextlib.suppress(KeyError, ValueError):
                await namespace.leave_room(sid, room)
