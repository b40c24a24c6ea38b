"""Multi-node placement on a real two-node Ray cluster made on this machine.

A tenant's account hosts are spread over the cluster's nodes; when a whole node is lost (its
raylet and every process on it killed), its hosts come back on the node that is left, with their
shards, and every account's figures equal the reference's exactly. The scenario runs in a process
of its own (`tests/actors/two_nodes.py`), which shuts its cluster down; the test then checks that
no process of that session (Ray's daemons and workers start in it) is left. Small on purpose (two
nodes of one CPU each, 24 accounts).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.ray]
ROOT = Path(__file__).resolve().parents[2]


def _left_in(session: int) -> list[str]:
    """The processes still in `session` (the scenario's, with every Ray process it started)."""
    left = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getsid(int(entry.name)) == session:
                    left.append((entry / "cmdline").read_text().replace("\0", " ")[:120])
            except (ProcessLookupError, FileNotFoundError, PermissionError):
                continue  # it ended meanwhile
    return left


def test_hosts_spread_over_two_nodes_and_a_lost_node_moves_its_shards_to_the_other() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.actors.two_nodes"], cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
        env={**os.environ, "RAY_ADDRESS": ""},
    )
    try:
        out, err = process.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGTERM)  # its `finally` shuts the cluster down
        try:
            out, err = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            out, err = process.communicate()
    deadline = time.monotonic() + 30
    while (left := _left_in(process.pid)) and time.monotonic() < deadline:
        time.sleep(0.5)
    if left:
        os.killpg(process.pid, signal.SIGKILL)
    assert not left, f"the scenario left Ray processes behind: {left}"
    assert process.returncode == 0, err[-4000:]
    result = json.loads(out.strip().splitlines()[-1])
    assert result["hosts_before"] == 2
    assert result["nodes_before"] == sorted([result["head"], result["lost"]])  # one host on each node
    assert result["accounts_on_lost_node"] > 0
    assert result["hosts_after"] == 2
    assert result["nodes_after"] == [result["head"]]  # the lost node's host runs on the head now
    assert sum(result["restarts"].values()) >= 1
    assert result["hosts_moved"] == 1  # started again by the supervisor, pinned to the head
    assert result["accounts"] == 24
    assert result["mismatches"] == []
