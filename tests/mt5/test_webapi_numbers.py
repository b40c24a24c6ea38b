"""The Web API's string numbers read exactly (never through a float) and its retcodes parsed."""

from __future__ import annotations

from decimal import Decimal

import pytest

from veles.mt5.webapi import numbers, retcodes


def test_money_becomes_exact_minor_units() -> None:
    assert numbers.minor_units("1234.56", 2) == 123456
    assert numbers.minor_units("-0.10", 2) == -10
    assert numbers.minor_units("100", 0) == 100
    assert numbers.minor_units("0.1", 2) + numbers.minor_units("0.2", 2) == 30  # floats: 0.30000000000000004
    assert numbers.decimal("1.10005") == Decimal("1.10005")


@pytest.mark.parametrize("bad", ["12.345", "abc", "", "NaN", "Infinity", 1.5, None, True])
def test_bad_money_is_refused_not_rounded(bad: object) -> None:
    with pytest.raises(ValueError, match="Balance"):
        numbers.minor_units(bad, 2, "Balance")


def test_integers() -> None:
    assert numbers.integer("100000") == 100000
    with pytest.raises(ValueError, match="integer"):
        numbers.integer("1.5", "Login")


def test_text_rounds_a_float_once_to_the_stored_digits() -> None:
    assert numbers.text(0.1 + 0.2, 2) == "0.30"
    assert numbers.text(1.234565, 5) == "1.23457"  # half away from zero, on the shortest repr
    assert numbers.text(-0.001, 2) == "0.00"
    assert numbers.text(100000.0, 2) == "100000.00"


def test_retcodes() -> None:
    assert retcodes.parse("0 Done").ok
    assert retcodes.parse("8 Not enough permissions") == retcodes.Retcode(8, "Not enough permissions")
    assert str(retcodes.parse("1012")) == "1012"
    assert retcodes.make(retcodes.ERR_PERMISSIONS) == "8 Not enough permissions"
    for bad in (None, "", "Done", 0):
        with pytest.raises(ValueError, match="retcode"):
            retcodes.parse(bad)
