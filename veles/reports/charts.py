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

from veles.reports.document import Chart

FONT_DIR = Path(matplotlib.get_data_path()) / "fonts" / "ttf"  # DejaVu: Latin, Greek, Cyrillic, symbols
COLOURS = ("#1f5fa8", "#d9822b", "#2e8b57", "#a83232")


def render_chart(chart: Chart, zone: str, width: float = 9.5, height: float = 3.6, dpi: int = 110) -> bytes:
    """The chart as a PNG; time axes are shown in `zone`, like the rest of the report."""
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
    axes.set_title(chart.title, fontsize=10)
    axes.set_ylabel(chart.y_label, fontsize=8)
    axes.tick_params(labelsize=8)
    axes.grid(axis="y", color="#dddddd", linewidth=0.6)
    axes.legend(fontsize=8, loc="best")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
