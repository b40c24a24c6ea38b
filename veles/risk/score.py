"""A 0-100 risk score per account, so a dealer can sort thousands of accounts by urgency.

    score = 100 * clamp(0.5 * L + 0.3 * D + 0.2 * U)

* L, margin-level pressure: 0 at or above twice the margin-call level, rising linearly to 1 at the
  stop-out level (0 without margin). In money mode levels are turned into percents of the margin.
* D, drawdown: the fraction of peak equity lost (0..1).
* U, leverage use: margin / equity, capped to 1 (1 when equity <= 0 and there is margin).

The account state overrides the blend: stop-out scores 100 and margin call at least 75, so the
most urgent accounts always sort first whatever their history. The weights favour margin level
because it is what triggers a stop-out; drawdown and leverage use rank accounts that are still safe.
"""

from __future__ import annotations

STATE_OK = "ok"
STATE_MARGIN_CALL = "margin_call"
STATE_STOP_OUT = "stop_out"

_MARGIN_CALL_FLOOR = 75.0


def risk_score(
    state: str,
    equity: float,
    margin: float,
    margin_call_pct: float,
    stop_out_pct: float,
    drawdown: float,
) -> float:
    """The score, rounded to one decimal. Levels are percents of margin (see module docstring).

    Called on every tick of every account, hence plain comparisons instead of helper calls.
    """
    if state == STATE_STOP_OUT:
        return 100.0
    blend = 0.3 * drawdown
    if margin > 0.0:
        comfortable = 2.0 * margin_call_pct
        span = comfortable - stop_out_pct
        pressure = (comfortable - equity / margin * 100.0) / (span if span > 1e-9 else 1e-9)
        pressure = 0.0 if pressure < 0.0 else 1.0 if pressure > 1.0 else pressure
        use = 1.0 if equity <= 0.0 or margin >= equity else margin / equity
        blend += 0.5 * pressure + 0.2 * use
    score = 100.0 if blend >= 1.0 else 100.0 * blend
    if state == STATE_MARGIN_CALL and score < _MARGIN_CALL_FLOOR:
        score = _MARGIN_CALL_FLOOR
    return round(score, 1)
