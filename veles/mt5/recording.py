"""Recording a gateway session to a file, and reading it back.

Format: JSON lines, gzip-compressed when the file name ends in ".gz".

* Line 1, the header: `{"format": "veles-mt5-session", "version": 1, "connection_id": ...,
  "symbols": [SymbolSpec...], "accounts": [AccountSnapshot...]}` - what a consumer synchronises
  from before the first batch. Dataclasses are JSON objects with their field names; enums are
  their values.
* Then one line per batch: `{"seq": 1, "sent_at": 1710000000.25, "quotes": [[symbol, bid, ask,
  time_msc], ...], "deals": [Deal...], "swaps": [PositionSwap...], "news": [NewsEvent...]}`.
  Quotes are arrays because they are most of the volume; files written before swaps or the
  calendar existed have no "swaps" or "news" (read as none).

Floats are written with Python's shortest round-trip repr, so a replay gives bit-identical
prices. NaN and infinities are written as the JSON extensions `NaN`/`Infinity` (as Python's json
does): a recording of a faulty feed must keep the fault, or replaying it would test nothing.
Readers ignore unknown fields, so adding a field to an event keeps old files readable.
"""

from __future__ import annotations

import dataclasses
import enum
import gzip
import json
import types
import typing
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

from veles.mt5.gateway import Gateway
from veles.risk.events import AccountSnapshot, Batch, Deal, NewsEvent, PositionSwap, Quote
from veles.risk.instruments import SymbolSpec

FORMAT = "veles-mt5-session"
VERSION = 1

T = TypeVar("T")


class RecordingError(ValueError):
    """The file is not a session recording this code can read."""


# -- encoding ---------------------------------------------------------------------------------


def to_json(value: Any) -> Any:
    """A dataclass (nested, with enums and tuples) as plain JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [to_json(item) for item in value]
    return value


def from_json(cls: type[T], data: Any) -> T:
    """Rebuild a dataclass written by `to_json`; unknown keys are ignored, missing ones default."""
    if not isinstance(data, dict):
        raise RecordingError(f"expected an object for {cls.__name__}, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{name: _field(hints[name], value) for name, value in data.items() if name in known})


def _field(hint: Any, value: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin is tuple:
        (item, *_rest) = typing.get_args(hint)
        return tuple(_field(item, v) for v in value)
    if origin in (typing.Union, types.UnionType):
        return value  # the optional scalars of the event types need no conversion
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return from_json(hint, value)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint(value)
    if hint is float and isinstance(value, int):
        return float(value)
    return value


def encode_batch(batch: Batch) -> dict[str, Any]:
    """A batch as one JSON object (without the connection id, which the header carries)."""
    return {
        "seq": batch.seq,
        "sent_at": batch.sent_at,
        "quotes": [[q.symbol, q.bid, q.ask, q.time_msc] for q in batch.quotes],
        "deals": [to_json(d) for d in batch.deals],
        "swaps": [to_json(w) for w in batch.swaps],
        "news": [to_json(n) for n in batch.news],
    }


def decode_batch(data: dict[str, Any], connection_id: str) -> Batch:
    """The inverse of `encode_batch`."""
    try:
        quotes = tuple(Quote(str(s), float(b), float(a), int(t)) for s, b, a, t in data["quotes"])
        deals = tuple(from_json(Deal, d) for d in data["deals"])
        swaps = tuple(from_json(PositionSwap, w) for w in data.get("swaps", ()))  # none before swaps existed
        news = tuple(from_json(NewsEvent, n) for n in data.get("news", ()))  # nor before the calendar
        return Batch(connection_id, int(data["seq"]), float(data["sent_at"]), quotes, deals, swaps, news=news)
    except (KeyError, TypeError, ValueError) as error:
        raise RecordingError(f"malformed batch: {error}") from error


# -- files ------------------------------------------------------------------------------------


def _open_for_writing(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, "wt", encoding="utf-8")
    return path.open("w", encoding="utf-8")


def _open_for_reading(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open("r", encoding="utf-8")


@dataclass(frozen=True, slots=True)
class SessionHeader:
    """What a recording starts with: the server as a consumer first sees it."""

    connection_id: str
    symbols: tuple[SymbolSpec, ...]
    accounts: tuple[AccountSnapshot, ...]


class SessionWriter:
    """Writes a header, then batches, one JSON line each. Use as a context manager."""

    def __init__(self, path: str | Path, header: SessionHeader) -> None:
        self._file = _open_for_writing(Path(path))
        self._line(
            {
                "format": FORMAT,
                "version": VERSION,
                "connection_id": header.connection_id,
                "symbols": [to_json(s) for s in header.symbols],
                "accounts": [to_json(a) for a in header.accounts],
            }
        )

    def write(self, batch: Batch) -> None:
        """Append one batch."""
        self._line(encode_batch(batch))

    def close(self) -> None:
        """Flush and close the file."""
        self._file.close()

    def __enter__(self) -> SessionWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _line(self, data: dict[str, Any]) -> None:
        self._file.write(json.dumps(data, separators=(",", ":")))
        self._file.write("\n")


class SessionReader:
    """Reads a recording: the header at once, the batches lazily (files can be long)."""

    def __init__(self, path: str | Path) -> None:
        self._file = _open_for_reading(Path(path))
        first = self._file.readline()
        try:
            data = json.loads(first)
        except json.JSONDecodeError as error:
            self._file.close()
            raise RecordingError(f"{path}: not a session recording ({error})") from error
        if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("version") != VERSION:
            self._file.close()
            raise RecordingError(f"{path}: not a {FORMAT} version {VERSION} file")
        self.header = SessionHeader(
            connection_id=str(data["connection_id"]),
            symbols=tuple(from_json(SymbolSpec, s) for s in data["symbols"]),
            accounts=tuple(from_json(AccountSnapshot, a) for a in data["accounts"]),
        )

    def batches(self, connection_id: str | None = None) -> Iterator[Batch]:
        """The recorded batches in order, labelled with `connection_id` (default: the recorded one)."""
        label = connection_id or self.header.connection_id
        for line in self._file:
            if line.strip():
                yield decode_batch(json.loads(line), label)

    def close(self) -> None:
        """Close the file."""
        self._file.close()

    def __enter__(self) -> SessionReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RecordingGateway:
    """Wraps any gateway and records everything the engine receives from it.

    The header is written from the inner gateway's symbols and accounts at construction; every
    batch `poll()` returns is appended before it is handed on.
    """

    def __init__(self, inner: Gateway, path: str | Path) -> None:
        self.connection_id = inner.connection_id
        self._inner = inner
        header = SessionHeader(inner.connection_id, tuple(inner.symbols()), tuple(inner.accounts()))
        self._writer = SessionWriter(path, header)

    def symbols(self) -> Sequence[SymbolSpec]:
        """The inner gateway's symbols."""
        return self._inner.symbols()

    def accounts(self) -> Sequence[AccountSnapshot]:
        """The inner gateway's accounts."""
        return self._inner.accounts()

    def account(self, login: int) -> AccountSnapshot:
        """One of the inner gateway's accounts."""
        return self._inner.account(login)

    def poll(self) -> Batch:
        """The inner gateway's next batch, recorded."""
        batch = self._inner.poll()
        self._writer.write(batch)
        return batch

    def close(self) -> None:
        """Close the recording and the inner gateway."""
        self._writer.close()
        self._inner.close()


def record(gateway: Gateway, path: str | Path, polls: int) -> list[Batch]:
    """Poll a gateway `polls` times into a new recording; the batches, for checking. The gateway
    stays open."""
    header = SessionHeader(gateway.connection_id, tuple(gateway.symbols()), tuple(gateway.accounts()))
    batches: list[Batch] = []
    with SessionWriter(path, header) as writer:
        for _ in range(polls):
            batch = gateway.poll()
            writer.write(batch)
            batches.append(batch)
    return batches
