"""Plain-text tables for a person's terminal: `status`, `check`, `cluster status` and every
listing of `bin-manager`.

Columns padded with two spaces, no colour and no dependency: the same bytes on a
terminal, in a pipe and in cron mail.
"""

from __future__ import annotations

from collections.abc import Sequence


def render_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """`header` and `rows`, one line each, every column as wide as its widest cell."""
    lines = [list(header), *(list(row) for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() + "\n"
        for line in lines
    )
