"""What a doctor run produces: one CheckResult per thing examined, and the DoctorReport.

A check belongs to a group; the groups are shown and counted in this order. `component`
names the stack component the check is about (the root-cause walk starts there) and
`needs` the other components it exercises (an order round trip needs the venue too).

The report is typed until the edge: the terminal view, STATUS_REPORT.md, JUnit and
Prometheus text read it as it is; `--json` and `<run_dir>/doctor-last.json` are its JSON
(`to_json`), and `decode_report` reads that back (`trade-ops report status`).

    DoctorReport
      tool, status, exit_code, strict, reachable   the verdict (status: pass | warn | fail)
      started_at, duration_ms, startup_ms          when, how long (startup_ms: `--up` only)
      summary: {group: GroupCount}                 pass, warn, fail of total that ran, per group
      root_causes: [RootCause]                     what broke first, what it blocks, its fix
      checks: [CheckResult]                        every check, in group order
      target: TargetSeen                           what was examined, and every host:port contacted
      environment                                  versions, host, git revision
      bench: BenchSeen | None                      the newest saved bench run against this stack
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

import msgspec

from trade_ops.savedruns import Latency, SloResult

__all__ = [
    "GROUPS",
    "GROUP_TITLES",
    "BenchSeen",
    "CheckResult",
    "DoctorReport",
    "Group",
    "GroupCount",
    "RootCause",
    "Status",
    "TargetSeen",
    "decode_report",
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


class CheckResult(msgspec.Struct):
    name: str
    group: Group
    status: Status = "pass"
    cause: str | None = None  # the root cause's component name, set by rootcause.assign
    remedy: str | None = None  # the exact command or setting that fixes it
    component: str | None = None
    summary: str = ""  # one short phrase shown on the check's line
    duration_ms: float = 0.0
    details: list[str] = []
    problems: list[str] = []  # the details that are warnings or failures
    needs: tuple[str, ...] = ()
    blocked_by: list[str] = []  # failed dependencies (root causes)
    log_tail: list[str] = []
    data: dict[str, Any] = {}  # measurements: latency_ms, version, ...
    # Which evidence the verdict and its cause rest on: "its own answer", "health body",
    # "error text", "process", "nats monitoring", "wire sample", "stack file", "openapi",
    # "trade-ops' model" (the depends_on graph, streams, API rules: own services only).
    rests_on: list[str] = []

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


def worst(statuses: Iterable[str]) -> str:
    return max(statuses, key=lambda s: _RANK.get(s, 0), default="pass")


class GroupCount(msgspec.Struct):
    passed: int = msgspec.field(name="pass")
    warn: int = 0
    fail: int = 0
    total: int = 0


def summarize(checks: Sequence[CheckResult]) -> dict[str, GroupCount]:
    """Per group: how many passed, warned and failed, of how many that ran (skips excluded)."""
    out: dict[str, GroupCount] = {}
    for group in GROUPS:
        ran = [c for c in checks if c.group == group and c.status != "skip"]
        out[group] = GroupCount(passed=sum(c.status == "pass" for c in ran),
                                warn=sum(c.status == "warn" for c in ran),
                                fail=sum(c.status == "fail" for c in ran), total=len(ran))
    return out


def overall_status(checks: Sequence[CheckResult], strict: bool = False) -> str:
    status = worst(c.status for c in checks if c.status != "skip")
    return "fail" if strict and status == "warn" else status


class RootCause(msgspec.Struct, kw_only=True):
    name: str
    checks: list[str]  # the failing checks it explains
    blocks: list[str]  # the components those checks are about
    kind: str = "component"  # component | external | not examined
    remedy: str | None = None
    reason: str = ""
    evidence: list[str] = []
    rests_on: list[str] = []
    dependents: list[str] = []  # who depends on it: the graph among own services, evidence for the rest


class TargetSeen(msgspec.Struct, kw_only=True):
    stack: str
    offset: int | None
    run_dir: str
    supervised: bool = False
    explicit: bool = False
    own: list[str] = []  # the services judged by trade-ops' model
    foreign: list[str] = []  # ... and by their own evidence
    urls: dict[str, str | None] = {}
    contacted: list[str] = []  # every host:port doctor opened


class BenchSeen(msgspec.Struct, kw_only=True):
    name: str
    path: str
    saved_at: str | None
    target: str | None = None  # the URL it measured
    latency_ms: Latency
    slo: list[SloResult]
    passed: bool | None


class DoctorReport(msgspec.Struct, kw_only=True):
    tool: str
    status: str
    exit_code: int
    strict: bool
    reachable: bool
    started_at: str
    duration_ms: float
    summary: dict[str, GroupCount]
    root_causes: list[RootCause]
    checks: list[CheckResult]
    target: TargetSeen
    environment: dict[str, str | int | None]
    bench: BenchSeen | None
    startup_ms: float | None = None  # `doctor --up`: the stack's start, beside the doctor's own time

    @property
    def gate(self) -> str:
        """PASS or FAIL, as the exit code says."""
        return "FAIL" if self.status == "fail" or self.exit_code else "PASS"

    def to_json(self) -> dict[str, Any]:
        """As JSON has it (what decode_report reads back): a tuple is a list, and a measurement
        in a check's data that JSON has no type for is its text."""
        doc: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(self, enc_hook=str))
        return doc


def decode_report(data: bytes) -> DoctorReport:
    """A DoctorReport from its JSON (`--json`, doctor-last.json); msgspec.ValidationError or
    msgspec.DecodeError when it is not one."""
    return msgspec.json.decode(data, type=DoctorReport)
