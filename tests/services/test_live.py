"""The web tier's replica of a tenant's book: snapshots, diffs, gaps and pages."""

from __future__ import annotations

from typing import Any

from veles.services.live import TenantReplica


def _row(
    login: int, equity: float, group: str = "real\\standard", level: float | None = 200.0
) -> dict[str, Any]:
    return {"login": login, "group": group, "equity": equity, "margin_level": level}


def _msg(
    version: int, full: bool, rows: list[dict[str, Any]], equity: float, epoch: int = 1
) -> dict[str, Any]:
    return {"epoch": epoch, "version": version, "full": full, "accounts": rows, "totals": {"equity": equity},
            "sent_at": 1.0 + version, "published_at": 2.0 + version}


def test_snapshot_then_diffs_then_gap() -> None:
    replica = TenantReplica()
    assert replica.apply(_msg(3, True, [_row(1, 100.0), _row(2, 50.0)], 150.0))
    assert replica.apply(_msg(4, False, [_row(2, 60.0)], 160.0))
    assert replica.version == 4
    assert replica.rows[2]["equity"] == 60.0
    assert replica.totals == {"equity": 160.0}
    assert replica.apply(_msg(4, False, [_row(2, 999.0)], 999.0))  # a late duplicate changes nothing
    assert replica.rows[2]["equity"] == 60.0
    assert not replica.apply(_msg(6, False, [_row(1, 1.0)], 61.0))  # version 5 was missed
    assert replica.version == 4
    assert replica.rows[1]["equity"] == 100.0


def test_a_restarted_aggregator_forces_a_snapshot() -> None:
    replica = TenantReplica()
    replica.apply(_msg(7, True, [_row(1, 100.0)], 100.0, epoch=1))
    assert not replica.apply(_msg(1, False, [_row(1, 5.0)], 5.0, epoch=2))  # versions restarted
    assert replica.apply(_msg(1, True, [_row(1, 90.0)], 90.0, epoch=2))
    assert replica.apply(_msg(2, False, [_row(1, 95.0)], 95.0, epoch=2))
    assert (replica.version, replica.rows[1]["equity"]) == (2, 95.0)


def test_page_sorts_filters_and_puts_missing_values_last() -> None:
    replica = TenantReplica()
    rows = [_row(1, 10.0, level=None), _row(2, 30.0, "real\\pro", 150.0), _row(3, 20.0, level=90.0)]
    replica.apply(_msg(1, True, rows, 60.0))
    page, total = replica.page(sort="equity", descending=True)
    assert [r["login"] for r in page] == [2, 3, 1]
    assert total == 3
    page, _ = replica.page(sort="margin_level")
    assert [r["login"] for r in page] == [3, 2, 1]  # no margin in use sorts after every level
    page, _ = replica.page(sort="margin_level", descending=True)
    assert [r["login"] for r in page] == [2, 3, 1]
    page, total = replica.page(query="PRO")
    assert [r["login"] for r in page] == [2]
    assert total == 1
    page, total = replica.page(offset=1, limit=1)
    assert [r["login"] for r in page] == [2]
    assert total == 3


def test_page_sorts_and_filters_the_server_by_its_name_where_named() -> None:
    """The accounts table shows each connection by its name (`connection_names`), so it sorts and
    filters by that name; without names (the API's `q`) the ids as before."""
    replica = TenantReplica()
    rows = [{**_row(1, 10.0), "server": "conn-7"}, {**_row(2, 20.0), "server": "conn-12"},
            {**_row(3, 30.0), "server": "sim-1"}]
    replica.apply(_msg(1, True, rows, 60.0))
    names = {"conn-7": "Zeta https://zeta.broker:443", "conn-12": "Alpha https://alpha.broker:443",
             "sim-1": "Simulated"}
    page, _ = replica.page(sort="server", servers=names)
    assert [r["login"] for r in page] == [2, 3, 1]  # Alpha, Simulated, Zeta (the ids: 12, 7, sim)
    page, _ = replica.page(sort="server")
    assert [r["login"] for r in page] == [2, 1, 3]
    assert [r["login"] for r in replica.page(query="alpha.broker", servers=names)[0]] == [2]
    assert replica.page(query="alpha.broker")[1] == 0
    assert [r["login"] for r in replica.page(query="conn-7")[0]] == [1]
