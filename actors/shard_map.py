"""Where each account actor lives: trading accounts → virtual shards → account hosts.

Why virtual shards. A login's shard never changes (`login % shards`), so moving accounts is
moving whole shards between hosts, and the table of shard → host is all a supervisor needs to
rebuild placement after its own restart (it is derived from the number of hosts, the same every
time) or to replace a host. MT5 numbers logins consecutively, so `login % shards` spreads a
server's accounts evenly; with at least as many shards as accounts and one account per host,
every account gets a process of its own.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable

DEFAULT_SHARDS = 256


def host_count(accounts: int, cores: int, hosts: int = 0, accounts_per_host: int = 0,
               shards: int = DEFAULT_SHARDS) -> int:
    """How many hosts to run: `hosts` when given, else enough for `accounts_per_host` each when
    given, else one per core; never more than there are shards (or accounts), never fewer than one."""
    if hosts < 0 or accounts_per_host < 0:
        raise ValueError("hosts and accounts_per_host must not be negative")
    if hosts:
        wanted = hosts
    elif accounts_per_host:
        wanted = math.ceil(accounts / accounts_per_host)
    else:
        wanted = cores
    return max(1, min(wanted, shards, max(accounts, 1)))


class ShardMap:
    """Virtual shards assigned round-robin to hosts; a shard can be moved to another host."""

    def __init__(self, hosts: int, shards: int = DEFAULT_SHARDS) -> None:
        if hosts < 1 or shards < hosts:
            raise ValueError(f"need 1 <= hosts <= shards, got hosts={hosts} shards={shards}")
        self.shards = shards
        self.hosts = hosts
        self._host_of_shard = [shard % hosts for shard in range(shards)]

    def shard_of(self, login: int) -> int:
        """The account's virtual shard: fixed for the life of the login."""
        return login % self.shards

    def host_of(self, login: int) -> int:
        """The index of the host that runs this account's actor."""
        return self._host_of_shard[login % self.shards]

    def move(self, shard: int, host: int) -> None:
        """Run `shard`'s accounts on `host` from now on (the caller moves their state)."""
        if not 0 <= host < self.hosts:
            raise ValueError(f"no host {host} (there are {self.hosts})")
        self._host_of_shard[shard] = host

    def group(self, logins: Iterable[int]) -> dict[int, list[int]]:
        """The logins by host index."""
        by_host: defaultdict[int, list[int]] = defaultdict(list)
        for login in logins:
            by_host[self.host_of(login)].append(login)
        return dict(by_host)
