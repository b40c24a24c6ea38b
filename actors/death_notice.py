"""How soon a process that calls account hosts hears that one died: Ray's wait for death info.

Why. When an actor's process dies under a call (kill -9, the OOM killer), the caller's Ray core
worker does not fail the call at once: it waits up to `timeout_ms_task_wait_for_death_info`
(1 s by default, checked on a coarse timer) for the cluster's control store to say why, though
the control store itself knows within tens of milliseconds. The supervisor starts a dead host's
restore only when that call fails, so the default made detection take 1-2 s of every recovery.
Processes that run supervisors are started with this runtime environment, so they hear of a
death almost as soon as the control store does; the error they get says the actor is restarting
(`ActorUnavailableError`) or died (`RayActorError`), either of which starts the restore.

Ray reads `RAY_<setting>` from the environment when a worker process starts, so the setting is
the process's own and changes nothing else in the cluster.
"""

from __future__ import annotations

from typing import Any

DEATH_INFO_WAIT_MS = 50  # how long a failed call waits to learn why its actor died

RUNTIME_ENV: dict[str, Any] = {
    "env_vars": {"RAY_timeout_ms_task_wait_for_death_info": str(DEATH_INFO_WAIT_MS)},
}
