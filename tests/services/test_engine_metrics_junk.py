"""/metrics' engine stats with junk in one tenant's key: the others are still read.

Found by `veles chaos`: one key of `engine-stats:*` holding something that is not JSON made the
whole read fail, so /metrics showed no engine at all until that aggregator wrote its key again."""

from __future__ import annotations

import json
import os

import redis

from actors.engine_stats import EngineStats, engine_stats_key
from veles.config import Settings
from veles.services.engine_metrics import read_engine_stats


async def test_one_spoiled_key_does_not_hide_the_other_engines(redis_url: str) -> None:
    prefix = os.environ["VELES_REDIS_PREFIX"]
    client = redis.Redis.from_url(redis_url)
    client.set(engine_stats_key(prefix, 1), json.dumps(EngineStats(1).as_row()))
    client.set(engine_stats_key(prefix, 2), b"\x00chaos: not json {")
    client.set(engine_stats_key(prefix, 3), b"[1, 2, 3]")
    settings = Settings(_env_file=None, database_url="sqlite://", redis_url=redis_url,
                        veles_redis_prefix=prefix)

    rows = await read_engine_stats(settings)

    assert rows is not None
    assert [row["tenant_id"] for row in rows] == [1]
