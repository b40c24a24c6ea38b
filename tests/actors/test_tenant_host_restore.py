"""A restarted tenant host starts every tenant it held again, one bad tenant or not: a
registration that cannot be read, or whose supervisor raises as it is made, leaves that tenant
out with why, and its neighbours start all the same (before, the first bad one left every call to
the host failing). Ray's key-value store is stood in for by a dict behind the same functions, so
the real registration reading runs; the supervisors are the real classes, in this process, with
no connection to feed (nothing here needs a Ray cluster)."""

from __future__ import annotations

import pytest
from ray import cloudpickle
from ray.experimental import internal_kv

from actors import tenant_host
from actors.tenant_host import Registration, TenantHostCore, TenantNotHosted, registration_key

GOOD, UNREADABLE, RAISING = 7401, 7402, 7403


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> dict[str, bytes]:
    kv: dict[str, bytes] = {}

    def kv_list(prefix: str) -> list[bytes]:
        return [key.encode() for key in kv if key.startswith(prefix)]

    monkeypatch.setattr(internal_kv, "_internal_kv_list", kv_list)
    monkeypatch.setattr(internal_kv, "_internal_kv_get", lambda key: kv.get(key))
    monkeypatch.setattr(internal_kv, "_internal_kv_del", lambda key: kv.pop(key, None))
    monkeypatch.setattr(
        tenant_host.internal_kv, "_internal_kv_put", lambda key, value, **_: kv.__setitem__(key, value)
    )
    return kv


async def test_one_bad_tenant_does_not_keep_its_neighbours_from_starting_again(
    store: dict[str, bytes],
) -> None:
    host = TenantHostCore("tenants:0", "test-ns")

    def register(tenant_id: int, blob: bytes) -> None:
        store[registration_key("test-ns", "tenants:0", tenant_id)] = blob

    register(GOOD, cloudpickle.dumps(Registration(([], 10.0, None), {})))
    register(UNREADABLE, b"not a pickle")
    # the supervisor refuses these settings as it is made (its log must reach its checkpoints)
    register(
        RAISING, cloudpickle.dumps(Registration(([], 10.0, None), {"checkpoint_every": 5, "log_limit": 1}))
    )
    try:
        await host.restore()
        assert sorted(host.tenants) == [GOOD]
        status = await host.call(GOOD, "supervisor", "start")
        assert status["tenant_id"] == GOOD
        assert sorted(host.failed) == [UNREADABLE, RAISING]
        for tenant_id, why in ((UNREADABLE, "could not be started again"), (RAISING, "log_limit")):
            with pytest.raises(TenantNotHosted, match=why):
                await host.call(tenant_id, "supervisor", "status")
        assert host.has(GOOD, "aggregator")
        assert not host.has(RAISING, "supervisor")
        host.forget(RAISING)  # its connections removed: it is no longer reported
        assert sorted(host.failed) == [UNREADABLE]
    finally:
        await host.remove_all()


async def test_a_tenant_whose_supervisor_cannot_be_made_is_not_registered(store: dict[str, bytes]) -> None:
    host = TenantHostCore("tenants:0", "test-ns")
    with pytest.raises(ValueError, match="log_limit"):
        await host.add(RAISING, [], 10.0, None, checkpoint_every=5, log_limit=1)
    assert store == {}
    assert host.tenants == {}
    assert await host.add(GOOD, [], 10.0, None)
    assert list(store) == [registration_key("test-ns", "tenants:0", GOOD)]
    await host.remove_all()
    assert store == {}
