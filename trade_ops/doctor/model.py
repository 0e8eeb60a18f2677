"""What a doctor run produces: one CheckResult per thing examined, and the document.

A check belongs to a group; the groups are shown and counted in this order. `component`
names the stack component the check is about (the root-cause walk starts there) and
`needs` the other components it exercises (an order round trip needs the venue too).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "GROUPS",
    "GROUP_TITLES",
    "CheckResult",
    "Group",
    "Status",
    "overall_status",
    "summarize",
    "worst",
]

Status = Literal["pass", "warn", "fail", "skip"]
Group = Literal["infrastructure", "services", "functional", "dataflow", "processes", "configuration"]
GROUPS: tuple[Group, ...] = ("infrastructure", "services", "functional", "dataflow", "processes",
                             "configuration")
GROUP_TITLES: dict[str, str] = {
    "infrastructure": "Infrastructure", "services": "Services", "functional": "Functional",
    "dataflow": "Data flow", "processes": "Processes", "configuration": "Configuration",
}
_RANK = {"skip": -1, "pass": 0, "warn": 1, "fail": 2}


@dataclass
class CheckResult:
    name: str
    group: Group
    status: Status = "pass"
    duration_ms: float = 0.0
    details: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # the details that are warnings or failures
    cause: str | None = None  # the root cause's component name, set by rootcause.assign
    remedy: str | None = None  # the exact command or setting that fixes it
    component: str | None = None
    needs: tuple[str, ...] = ()
    summary: str = ""  # one short phrase shown on the check's line
    blocked_by: list[str] = field(default_factory=list)  # failed dependencies (root causes)
    log_tail: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)  # measurements: latency_ms, version, ...
    # Which evidence the verdict and its cause rest on: "its own answer", "health body",
    # "error text", "process", "nats monitoring", "wire sample", "stack file", "openapi",
    # "trade-ops' model" (the depends_on graph, streams, API rules: own services only).
    rests_on: list[str] = field(default_factory=list)

    def fail(self, detail: str, remedy: str | None = None) -> CheckResult:
        return self._mark("fail", detail, remedy)

    def warn(self, detail: str, remedy: str | None = None) -> CheckResult:
        return self._mark("warn", detail, remedy)

    def skip(self, why: str) -> CheckResult:
        """A check that cannot run here says so, with why, in every output."""
        self.status = "skip"
        self.summary = f"skipped: {why}"
        self.details.append(self.summary)
        return self

    def rest_on(self, *kinds: str) -> CheckResult:
        self.rests_on.extend(k for k in kinds if k not in self.rests_on)
        return self

    def _mark(self, status: Status, detail: str, remedy: str | None) -> CheckResult:
        if _RANK[status] > _RANK[self.status]:
            self.status = status
        self.details.append(detail)
        self.problems.append(detail)
        if remedy and not self.remedy:
            self.remedy = remedy
        return self

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "name": self.name, "group": self.group, "status": self.status,
            "cause": self.cause, "remedy": self.remedy, "component": self.component,
            "summary": self.summary, "duration_ms": round(self.duration_ms, 1),
            "details": self.details, "problems": self.problems,
        }
        if self.rests_on:
            doc["rests_on"] = self.rests_on
        if self.blocked_by:
            doc["blocked_by"] = self.blocked_by
        if self.log_tail:
            doc["log_tail"] = self.log_tail
        if self.data:
            doc["data"] = self.data
        return doc


def worst(statuses: Iterable[str]) -> str:
    return max(statuses, key=lambda s: _RANK.get(s, 0), default="pass")


def summarize(checks: Sequence[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Per group: how many passed, warned and failed, of how many that ran (skips excluded)."""
    out: dict[str, dict[str, int]] = {}
    for group in GROUPS:
        ran = [c for c in checks if c["group"] == group and c["status"] != "skip"]
        out[group] = {"pass": sum(c["status"] == "pass" for c in ran),
                      "warn": sum(c["status"] == "warn" for c in ran),
                      "fail": sum(c["status"] == "fail" for c in ran),
                      "total": len(ran)}
    return out


def overall_status(checks: Sequence[dict[str, Any]], strict: bool = False) -> str:
    status = worst(c["status"] for c in checks if c["status"] != "skip")
    return "fail" if strict and status == "warn" else status
