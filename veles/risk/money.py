"""Rounding money the way MT5 does: to the deposit currency's digits, half away from zero.

MT5 rounds every position's profit and every symbol's margin to the currency digits (2 for almost
every group) before summing them into account figures. We keep those rounded amounts as integers of
minor units (cents): sums and differences of integers are exact, so incremental updates can never
drift away from a from-scratch recomputation. Floats are only used inside one formula evaluation.

Tolerance: a formula result is a binary float, so an amount that is a decimal tie on paper
(12.345) may be stored as 12.34499999999. We add 1e-6 of a minor unit before truncating, so such
ties round away from zero like a hand computation (and MT5's NormalizeDouble) does. Real amounts
that are within 1e-6 cent of a tie are therefore rounded up rather than down: a 0.01 difference at
most, on a case that has probability ~1e-6.
"""

from __future__ import annotations

MONEY_DIGITS = 2
_TIE_EPSILON = 1e-6


def to_minor(amount: float, digits: int = MONEY_DIGITS) -> int:
    """`amount` rounded to `digits` decimals, as an integer count of 10^-digits units."""
    scaled = amount * 10**digits
    if scaled >= 0.0:
        return int(scaled + 0.5 + _TIE_EPSILON)
    return -int(-scaled + 0.5 + _TIE_EPSILON)


def from_minor(minor: int, digits: int = MONEY_DIGITS) -> float:
    """Minor units back to a float amount (exact to the printed digits)."""
    return minor / 10**digits


def round_money(amount: float, digits: int = MONEY_DIGITS) -> float:
    """`amount` rounded as MT5 rounds money: half away from zero, to `digits` decimals."""
    return from_minor(to_minor(amount, digits), digits)
