"""The process table that `up`, `ps` and `down` print (no command here)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from rich import box
from rich.table import Table

if TYPE_CHECKING:
    from trade_ops.supervisor import ProcessStatus

__all__ = ["process_table"]

_STYLE = {"ready": "green", "running": "yellow", "stopped": "dim", "dead": "red", "failed": "bold red"}


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def process_table(rows: Iterable[ProcessStatus], title: str | None = None) -> Table:
    # No vertical rules: the 16 rows of a full stack fit 80 columns without truncated names.
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    for column in ("name", "pid", "port", "state", "ready s", "uptime s", "restarts"):
        table.add_column(column, justify="left" if column in ("name", "state") else "right",
                         no_wrap=column == "name")
    for st in rows:
        style = _STYLE.get(st.state, "")
        table.add_row(st.name, str(st.pid or "-"), str(st.port or "-"), f"[{style}]{st.state}[/]",
                      _seconds(st.ready_s), _seconds(st.uptime_s), str(st.restarts))
    return table
