"""Charts as PNG bytes, drawn by matplotlib's Agg backend through its object API (no pyplot
global state, so worker threads can draw at once)."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from veles.reports.document import Chart

FONT_DIR = Path(matplotlib.get_data_path()) / "fonts" / "ttf"  # DejaVu: Latin, Greek, Cyrillic, symbols
COLOURS = ("#1f5fa8", "#d9822b", "#2e8b57", "#a83232")
_UNITS = ((1e9, "bn"), (1e6, "m"), (1e3, "k"))


def value_unit(series: dict[str, list[float]], label: str) -> tuple[float, str]:
    """The divisor and axis label that keep tick numbers short: 12,500,000 USD reads "12.5" on an
    axis labelled "USD m", never matplotlib's "1e7" offset above the axis."""
    largest = max((abs(v) for values in series.values() for v in values), default=0.0)
    for divisor, suffix in _UNITS:
        if largest >= divisor:
            return divisor, f"{label} {suffix}"
    return 1.0, label


def _tick(divisor: float) -> FuncFormatter:
    """Thousands separators and at most two decimals, trailing zeros dropped ("2.5", "1,250")."""
    return FuncFormatter(lambda value, _pos: f"{value / divisor:,.2f}".rstrip("0").rstrip("."))


def draw_chart(chart: Chart, zone: str, width: float = 9.5, height: float = 3.6, dpi: int = 110) -> Figure:
    """The chart drawn on a figure of its own; time axes are shown in `zone`, like the rest of the
    report."""
    figure = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    if chart.kind == "bar":
        positions = range(len(chart.categories))
        width_each = 0.8 / max(1, len(chart.series))
        for i, (name, values) in enumerate(chart.series.items()):
            axes.bar(
                [p + i * width_each for p in positions],
                values,
                width_each,
                label=name,
                color=COLOURS[i % len(COLOURS)],
            )
        axes.set_xticks(
            [p + width_each * (len(chart.series) - 1) / 2 for p in positions],
            [str(c) for c in chart.categories],
            rotation=30,
            ha="right",
            fontsize=8,
        )
        axes.axhline(0, color="#444444", linewidth=0.8)
    else:
        tz = ZoneInfo(zone)
        times = date2num([c.astimezone(tz) for c in chart.categories if isinstance(c, datetime)])
        for i, (name, values) in enumerate(chart.series.items()):
            axes.plot(times, values, label=name, color=COLOURS[i % len(COLOURS)], linewidth=1.4)
        locator = AutoDateLocator(tz=tz)
        axes.xaxis.set_major_locator(locator)
        axes.xaxis.set_major_formatter(ConciseDateFormatter(locator, tz=tz))
    divisor, y_label = value_unit(chart.series, chart.y_label)
    axes.yaxis.set_major_formatter(_tick(divisor))  # a formatter of our own has no offset text
    axes.set_title(chart.title, fontsize=10)
    axes.set_ylabel(y_label, fontsize=8)
    axes.tick_params(labelsize=8)
    axes.grid(axis="y", color="#dddddd", linewidth=0.6)
    axes.legend(fontsize=8, loc="best")
    figure.tight_layout()
    return figure


def render_chart(chart: Chart, zone: str) -> bytes:
    """The chart as a PNG."""
    buffer = io.BytesIO()
    draw_chart(chart, zone).savefig(buffer, format="png")
    return buffer.getvalue()
