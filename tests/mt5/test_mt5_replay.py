"""Recording a session and replaying it gives back exactly what was recorded."""

from __future__ import annotations

import dataclasses
import gzip
import math
from pathlib import Path

import pytest

from veles.mt5.connect import GatewaySpec, open_gateway
from veles.mt5.gateway import Gateway, GatewayError
from veles.mt5.recording import RecordingError, RecordingGateway, SessionReader, record
from veles.mt5.replay import ReplayGateway
from veles.mt5.simulator import Fault, SimulatedBroker
from veles.risk.events import Batch

START = 1_710_000_000_000


def comparable(batch: Batch) -> Batch:
    """Drop the wall clock; NaN != NaN, so faulty quotes compare by their repr."""
    quotes = tuple(
        dataclasses.replace(q, bid=repr(q.bid), ask=repr(q.ask)) if math.isnan(q.bid) else q  # type: ignore[arg-type]
        for q in batch.quotes
    )
    return dataclasses.replace(batch, sent_at=0.0, quotes=quotes)


@pytest.mark.parametrize("name", ["session.jsonl", "session.jsonl.gz"])
def test_replay_returns_the_recorded_batches_then_empty_ones(tmp_path: Path, name: str) -> None:
    broker = SimulatedBroker(accounts=20, seed=9, start_msc=START)
    path = tmp_path / name
    recorded = record(broker, path, 600)
    replay = ReplayGateway(path)
    assert isinstance(replay, Gateway)
    assert replay.connection_id == "demo"
    assert tuple(replay.symbols()) == tuple(broker.symbols())
    played = [replay.poll() for _ in range(600)]
    assert [comparable(b) for b in played] == [comparable(b) for b in recorded]
    assert sum(len(b.deals) for b in played) > 20
    assert not replay.finished
    tail = [replay.poll() for _ in range(3)]
    assert replay.finished
    assert [(b.seq, b.quotes, b.deals) for b in tail] == [(601, (), ()), (602, (), ()), (603, (), ())]
    replay.close()
    with pytest.raises(GatewayError):
        replay.poll()


def test_gzip_recordings_are_compressed(tmp_path: Path) -> None:
    record(SimulatedBroker(accounts=5, start_msc=START), tmp_path / "s.jsonl.gz", 50)
    with gzip.open(tmp_path / "s.jsonl.gz", "rt") as file:
        assert '"format":"veles-mt5-session"' in file.readline()


def test_replay_accounts_follow_the_deals_played(tmp_path: Path) -> None:
    broker = SimulatedBroker(accounts=25, seed=4, start_msc=START)
    start = broker.accounts()
    record(broker, tmp_path / "s.jsonl", 1200)
    replay = ReplayGateway(tmp_path / "s.jsonl", connection_id="replayed")
    assert tuple(replay.accounts()) == tuple(start)
    while not replay.finished:
        assert replay.poll().connection_id == "replayed"
    assert tuple(replay.accounts()) == tuple(broker.accounts())
    login = start[0].login
    assert replay.account(login) == broker.account(login)
    with pytest.raises(GatewayError):
        replay.account(1)


def test_faults_survive_the_round_trip_and_do_not_corrupt_books(tmp_path: Path) -> None:
    broker = SimulatedBroker(accounts=10, start_msc=START)
    recorder = RecordingGateway(broker, tmp_path / "s.jsonl")
    for _ in range(30):
        recorder.poll()
    for fault in (Fault.NAN_QUOTE, Fault.UNKNOWN_SYMBOL, Fault.CROSSED_QUOTE, Fault.DUPLICATE_DEAL):
        broker.inject(fault)
    spoiled = recorder.poll()
    for _ in range(30):
        recorder.poll()
    recorder.close()

    replay = ReplayGateway(tmp_path / "s.jsonl")
    played = [replay.poll() for _ in range(61)]
    assert comparable(played[30]) == comparable(spoiled)
    assert any(math.isnan(q.bid) for q in played[30].quotes)
    assert tuple(replay.accounts()) == tuple(broker.accounts())


def test_not_a_recording_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.jsonl"
    path.write_text('{"hello": 1}\n')
    with pytest.raises(RecordingError):
        SessionReader(path)
    path.write_text("not json\n")
    with pytest.raises(RecordingError):
        ReplayGateway(path)


def test_replay_opens_from_a_gateway_spec(tmp_path: Path) -> None:
    record(SimulatedBroker(accounts=3, start_msc=START), tmp_path / "s.jsonl", 5)
    gateway = open_gateway(GatewaySpec("replay", "lab", {"path": str(tmp_path / "s.jsonl")}))
    assert gateway.connection_id == "lab"
    assert gateway.poll().seq == 1
