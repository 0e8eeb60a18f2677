"""The process table that `up`, `ps`, `restart` and `down` print, and its JSON rows (no command here)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from rich import box
from rich.table import Table

if TYPE_CHECKING:
    from trade_ops.plan import ProcessStatus

__all__ = ["JSON_KEYS", "human_duration", "process_rows", "process_table"]

_STYLE = {"ready": "green", "running": "yellow", "stopped": "dim", "dead": "red", "failed": "bold red"}
JSON_KEYS = ("name", "kind", "pid", "port", "state", "alive", "ready_s", "uptime_s", "restarts", "log")


def human_duration(seconds: float | None) -> str:
    """'0.84s', '42s', '3m 07s', '2h 05m', '3d 04h': as precise as a glance needs."""
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.2f}s"
    whole = int(seconds)
    for unit, size, sub, sub_size in (("d", 86400, "h", 3600), ("h", 3600, "m", 60), ("m", 60, "s", 1)):
        if whole >= size:
            return f"{whole // size}{unit} {whole % size // sub_size:02d}{sub}"
    return f"{whole}s"


def process_rows(rows: Iterable[ProcessStatus]) -> list[dict[str, Any]]:
    return [{k: v for k, v in st.to_dict().items() if k in JSON_KEYS} for st in rows]


def process_table(rows: Iterable[ProcessStatus], title: str | None = None) -> Table:
    # No vertical rules: the 16 rows of a full stack fit 80 columns without truncated names.
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    for column in ("name", "pid", "port", "state", "ready in", "uptime", "restarts"):
        table.add_column(column, justify="left" if column in ("name", "state") else "right",
                         no_wrap=column == "name")
    for st in rows:
        style = _STYLE.get(st.state, "")
        table.add_row(st.name, str(st.pid or "-"), str(st.port or "-"), f"[{style}]{st.state}[/]",
                      human_duration(st.ready_s), human_duration(st.uptime_s), str(st.restarts))
    return table
