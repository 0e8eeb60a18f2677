"""STATUS_REPORT.md re-rendered from the last doctor result (`<run_dir>/doctor-last.json`)."""

from __future__ import annotations

from pathlib import Path

import msgspec

from trade_ops.errors import RunDirError, TradeOpsError
from trade_ops.rundir import RunDir

__all__ = ["STATUS_REPORT", "write_status_report"]

STATUS_REPORT = "STATUS_REPORT.md"  # its name in the run directory's reports/


def write_status_report(run_dir: RunDir, out: Path | None = None) -> Path:
    out = out or run_dir.reports / STATUS_REPORT
    source = run_dir.doctor_last
    try:  # the doctor is its own package; import it only when asked for
        from trade_ops.doctor.model import decode_report
        from trade_ops.doctor.status_report import render_status_report
    except ImportError as exc:
        raise TradeOpsError("this trade-ops has no status report renderer "
                            f"(trade_ops.doctor.status_report: {exc})",
                            detail="install a trade-ops that includes `trade-ops doctor`") from None
    try:
        report = decode_report(source.read_bytes())
    except FileNotFoundError:
        raise RunDirError(f"no doctor result in {run_dir.path} (no {source.name})",
                          detail="run `trade-ops doctor` first; it saves its last result there") from None
    except msgspec.ValidationError as exc:  # JSON, of another shape (a DecodeError too: first)
        raise RunDirError(f"doctor result {source} is not a doctor report: {exc}",
                          detail="run `trade-ops doctor` again to replace it") from None
    except (OSError, msgspec.DecodeError) as exc:
        raise RunDirError(f"doctor result {source} is unreadable: {exc}") from None
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_status_report(report))
    return out
