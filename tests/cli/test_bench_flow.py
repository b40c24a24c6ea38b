"""`veles bench flow`: the measurement runs end to end on a small population, and a bad mix file
is refused with a clear message before any work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from veles.bench import flow
from veles.cli.bench import app
from veles.mt5.simulator import SimulatedBroker
from veles.mt5.traders import HedgedPair, Style, Syndicate, parse_mix


def test_bench_flow_prints_json_and_a_table(tmp_path: Path) -> None:
    mix = tmp_path / "mix.json"
    mix.write_text(json.dumps({"swing": 2, "latency_arb": 1, "scalper": 1}))
    result = CliRunner().invoke(
        app, ["flow", "--seed", "5", "--accounts", "24", "--minutes", "3", "--mix", str(mix)]
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    report = json.loads(lines[0])
    assert report["labels"]["latency_arbitrage"]["accounts"] == 6
    assert report["labels"]["scalper"]["accounts"] == 6
    assert report["ordinary_accounts"] == 12
    assert sum(report["confusion"].values()) == 24
    assert report["detector_cpu_us_per_batch"] > 0
    assert report["engine_cpu_us_per_batch"] > 0
    assert any(line.startswith("latency_arbitrage") for line in lines[1:])


@pytest.mark.parametrize(("content", "message"), [
    ('{"swing": 1, "whale": 2}', "unknown style 'whale'"),
    ('{"swing": -1}', "must be a finite number >= 0"),
    ('{"swing": "lots"}', "must be a finite number >= 0"),
    ('{"swing": 0}', "at least one style with a positive weight"),
    ("[1, 2]", "must be a JSON object"),
    ("{not json", "cannot read the mix"),
])
def test_bench_flow_refuses_a_bad_mix(tmp_path: Path, content: str, message: str) -> None:
    mix = tmp_path / "mix.json"
    mix.write_text(content)
    result = CliRunner().invoke(app, ["flow", "--accounts", "5", "--minutes", "1", "--mix", str(mix)])
    assert result.exit_code == 2
    assert message in " ".join(result.output.replace("│", " ").split())


def test_bench_flow_refuses_a_missing_mix_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["flow", "--mix", str(tmp_path / "nope.json")])
    assert result.exit_code == 2
    assert "cannot read the mix" in " ".join(result.output.replace("│", " ").split())


def test_run_refuses_bad_sizes() -> None:
    with pytest.raises(ValueError, match="accounts"):
        flow.run(1, 0, 1.0)
    with pytest.raises(ValueError, match="minutes"):
        flow.run(1, 5, 0.0)


def test_simulated_pairs_and_syndicates_are_linked_and_trade_together() -> None:
    """The ground truth is real behaviour: a pair's partner opens the opposite side of the
    leader's trade within seconds, a syndicate's followers the same side."""
    broker = SimulatedBroker(
        accounts=10, seed=3, start_msc=flow.START_MSC, warmup=0.0,
        mix=parse_mix({"hedged_pair": 1, "syndicate": 1}),
    )
    traders = {t.login: t for t in broker._traders}
    leaders = [t for t in traders.values() if isinstance(t, HedgedPair) and t.partner is not None]
    heads = [t for t in traders.values() if isinstance(t, Syndicate) and t.followers]
    assert len(leaders) == 2
    assert len(heads) >= 1
    assert set(broker.styles().values()) <= {Style.HEDGED_PAIR, Style.SYNDICATE, Style.SWING}
    entries = []
    for _ in range(4800):  # 20 simulated minutes
        entries += [d for d in broker.poll().deals if d.entry.value == "in"]
    partners = {t.login: t.partner.login for t in leaders if t.partner is not None}
    led = [d for d in entries if d.login in partners and d.comment == "hedged_pair"]
    hedged = [
        deal for deal in led
        if any(f.login == partners[deal.login] and f.symbol == deal.symbol and f.kind != deal.kind
               and 0 <= f.time_msc - deal.time_msc <= 5_000 for f in entries)
    ]
    assert len(led) >= 3
    assert len(hedged) >= len(led) * 0.6  # the partner's free margin may refuse a leg
    followers = {t.login: [f.login for f in t.followers] for t in heads}
    calls = [d for d in entries if d.login in followers and d.comment == "syndicate"]
    copied = [
        deal for deal in calls
        if any(f.login in followers[deal.login] and f.symbol == deal.symbol and f.kind == deal.kind
               and 0 <= f.time_msc - deal.time_msc <= 5_000 for f in entries)
    ]
    assert len(calls) >= 3
    assert len(copied) >= len(calls) * 0.6
