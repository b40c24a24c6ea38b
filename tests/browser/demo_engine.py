"""Run by browser tests as a child process: join the demo's Ray cluster (its portal's RAY_ADDRESS)
and pause, resume or read the demo broker's engine. A child process, because the test process may
hold a Ray cluster of its own (other modules' `ray_local`), and one process joins one cluster.

    python -m tests.browser.demo_engine ADDRESS NAMESPACE TENANT pause|resume
    python -m tests.browser.demo_engine ADDRESS NAMESPACE TENANT stress SCENARIO   # JSON on stdout
"""

from __future__ import annotations

import json
import sys

import ray

from actors.tenant_directory import find
from veles.services.stress import stress_parts


def main(address: str, namespace: str, tenant: str, command: str, *rest: str) -> None:
    ray.init(address=address, namespace=namespace, logging_level="ERROR", log_to_driver=False)
    try:
        supervisor = find(int(tenant), "supervisor", namespace)
        assert supervisor is not None, f"tenant {tenant} runs no engine"
        if command == "pause":
            ray.get(supervisor.pause.remote(), timeout=120)
        elif command == "resume":
            ray.get(supervisor.resume.remote(), timeout=60)
        elif command == "stress":
            print(json.dumps(stress_parts(ray.get(supervisor.book_parts.remote(), timeout=120), rest[0])))
        else:
            raise SystemExit(f"unknown command {command!r}")
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main(*sys.argv[1:])
