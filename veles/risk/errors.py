"""Errors the risk core raises, so callers can tell bad input from missing market data.

`RejectedEvent` means "this event is invalid or stale and was NOT applied": the state is exactly as
before. `MissingQuoteError` means a conversion needs a quote nobody has sent yet; it names the pair so
an operator knows what to subscribe to.
"""

from __future__ import annotations


class RejectedEvent(ValueError):
    """An event (deal, quote, snapshot entry) was refused; nothing was changed.

    `field` names the offending field the way a JSON path would (`positions[0].volume`, `ticket`),
    `reason` says what is wrong with it.
    """

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class MissingQuoteError(LookupError):
    """A currency conversion needs the quote of `pair`, and none is known."""

    def __init__(self, pair: str, source: str, target: str) -> None:
        super().__init__(f"no quote for {pair}, needed to convert {source} to {target}")
        self.pair = pair
        self.source = source
        self.target = target
