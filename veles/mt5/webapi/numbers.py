"""Exact reading and writing of the Web API's numbers, which all travel as JSON strings.

Money must stay exact to MT5's figures, so nothing goes through a float: a string becomes a
Decimal, and money becomes integer minor units of its currency (cents for 2 digits). A value that
has more decimals than its currency allows is refused rather than rounded, because it means we
misread the currency's digits, not that the server sent half a cent.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation


def decimal(value: object, name: str = "value") -> Decimal:
    """A finite Decimal from the server's string (an int is tolerated; floats and bools are not,
    since a float already lost exactness before we saw it)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"{name}: expected a number as a string, got {value!r}")
    try:
        parsed = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"{name}: not a number: {str(value)[:40]!r}") from None
    if not parsed.is_finite():
        raise ValueError(f"{name}: not a finite number: {value!r}")
    return parsed


def integer(value: object, name: str = "value") -> int:
    """An integer field (login, ticket, digits, modes); "12.0" is refused, "12" accepted."""
    parsed = decimal(value, name)
    if parsed != parsed.to_integral_value():
        raise ValueError(f"{name}: expected an integer, got {value!r}")
    return int(parsed)


def minor_units(value: object, digits: int, name: str = "value") -> int:
    """Money as integer minor units of a currency with `digits` decimals ("1234.56", 2 → 123456)."""
    if not 0 <= digits <= 8:
        raise ValueError(f"{name}: currency digits {digits} out of range")
    scaled = decimal(value, name).scaleb(digits)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{name}: {value!r} has more than {digits} decimals")
    return int(scaled)


def text(value: float | int | Decimal, digits: int) -> str:
    """How a server writes a number with `digits` decimals (used by the fake server): a float
    from the simulator is rounded once, here, half away from zero, to what MT5 would store."""
    exact = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    rounded = exact.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)  # as NormalizeDouble
    return f"{abs(rounded) if rounded == 0 else rounded:f}"  # never "-0.00"


def lossless(value: float | int | Decimal, digits: int) -> str:
    """`text(value, digits)` when that reads back as the same float, else the float's shortest
    exact form: the fake server writes what the simulator holds without losing a bit (an averaged
    netting price or a cross rate has more decimals than the symbol's digits, as MT5's own doubles
    do), so a connector reading it rebuilds exactly the simulator's figures."""
    written = text(value, digits)
    if not isinstance(value, float) or float(written) == value:
        return written
    exact = Decimal(repr(value))
    return f"{abs(exact) if exact == 0 else exact:f}"
