"""`veles bench engine --tenants T`: the accounts' split over tenants, and bad sizes refused
before any Ray cluster starts (exit 2, naming the option)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from veles.bench.engine import tenant_placement, tenant_sizes
from veles.cli.bench import app


def test_accounts_are_split_evenly_over_tenants() -> None:
    assert tenant_sizes(10_000, 100) == [100] * 100
    assert tenant_sizes(10, 3) == [4, 3, 3]
    assert sum(tenant_sizes(1_001, 7)) == 1_001


@pytest.mark.parametrize("tenants", ["0", "11", "-1"])
def test_tenants_outside_one_to_accounts_are_refused(tenants: str) -> None:
    result = CliRunner().invoke(app, ["engine", "--accounts", "10", "--tenants", tenants])
    assert result.exit_code == 2
    assert "--tenants" in result.output


def test_split_refuses_more_tenants_than_accounts() -> None:
    with pytest.raises(ValueError, match="tenants <= accounts"):
        tenant_sizes(5, 6)


def test_tenants_are_placed_as_veles_engine_places_them() -> None:
    # the product's default: tenant hosts, one per CPU; a number given is kept; one process per
    # tenant only when asked
    assert tenant_placement(0, False, cpus=2) == 2
    assert tenant_placement(0, False, cpus=0) == 1
    assert tenant_placement(3, False, cpus=2) == 3
    assert tenant_placement(0, True, cpus=2) == 0


def test_tenant_hosts_with_process_per_tenant_is_refused() -> None:
    result = CliRunner().invoke(
        app, ["engine", "--accounts", "10", "--tenant-hosts", "2", "--process-per-tenant"]
    )
    assert result.exit_code == 2
    assert "--tenant-hosts" in result.output
