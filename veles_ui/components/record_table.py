"""The portal's plain record table: column headers over one row per record of a list var."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import reflex as rx


def record_table(headers: tuple[str, ...], rows: Any, row: Callable[[Any], rx.Component], table_id: str
                 ) -> rx.Component:
    """A compact table with `headers`, rendering `row(record)` for each record of `rows`."""
    return rx.table.root(
        rx.table.header(rx.table.row(*(rx.table.column_header_cell(h) for h in headers))),
        rx.table.body(rx.foreach(rows, row)),
        size="1",
        variant="surface",
        width="100%",
        id=table_id,
    )
