"""GitHub Actions' job summary: markdown appended to the file $GITHUB_STEP_SUMMARY names.

Appended, never replaced: several steps (doctor, bench, report) each add their part.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["STEP_SUMMARY", "append_step_summary"]

STEP_SUMMARY = "GITHUB_STEP_SUMMARY"


def append_step_summary(markdown: str) -> Path | None:
    """Append `markdown` to the job summary when CI set one; the file written, or None."""
    name = os.environ.get(STEP_SUMMARY)
    if not name:
        return None
    path = Path(name)
    with path.open("a", encoding="utf-8") as out:
        out.write(markdown.rstrip("\n") + "\n\n")
    return path
