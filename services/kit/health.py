"""Health checks in the IETF "Health Check Response Format for HTTP APIs" shape.

A check is an async callable returning a Check. `run_checks` runs them all at once,
each bounded by a timeout (a check that hangs is a `fail` with output "timed out"), and
folds them into one document: status is the worst of the checks; HTTP 200 for pass and
warn, 503 for fail.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from services.contract import OWN_DESCRIPTION

__all__ = ["Check", "CheckFn", "NamedCheck", "Status", "health_document", "http_status", "run_checks",
           "worst"]

Status = Literal["pass", "warn", "fail"]
_RANK = {"pass": 0, "warn": 1, "fail": 2}


@dataclass
class Check:
    component: str  # "valkey"
    measurement: str  # "responseTime"
    status: Status = "pass"
    component_type: str = "component"  # datastore | system | component
    observed_value: Any = None
    observed_unit: str | None = None
    output: str | None = None

    @property
    def key(self) -> str:
        return f"{self.component}:{self.measurement}"

    def to_json(self, now: str) -> dict[str, Any]:
        entry: dict[str, Any] = {"componentType": self.component_type, "status": self.status,
                                 "time": now}
        if self.observed_value is not None:
            entry["observedValue"] = self.observed_value
        if self.observed_unit:
            entry["observedUnit"] = self.observed_unit
        if self.output and self.status != "pass":
            entry["output"] = self.output
        return entry


CheckFn = Callable[[], Awaitable[Check | list[Check]]]  # a list: one entry per part (tasks)


def worst(statuses: Sequence[Status]) -> Status:
    return max(statuses, key=_RANK.__getitem__, default="pass")


@dataclass(frozen=True)
class NamedCheck:
    name: str
    fn: CheckFn
    # Said even when the check times out or raises: a reader (doctor) tells a failing
    # dependency (datastore, system) from a failing part of the service itself (component).
    component_type: str = "component"


async def _bounded(check: NamedCheck, timeout: float) -> Check | list[Check]:
    started = time.perf_counter()
    try:
        return await asyncio.wait_for(check.fn(), timeout)
    except TimeoutError:
        return Check(check.name, "responseTime", "fail", check.component_type,
                     observed_value=round(timeout * 1000), observed_unit="ms",
                     output=f"timed out after {timeout:.2f}s")
    except Exception as exc:  # a check that raises is a failed check, not a 500
        elapsed = round((time.perf_counter() - started) * 1000, 3)
        return Check(check.name, "responseTime", "fail", check.component_type, observed_value=elapsed,
                     observed_unit="ms", output=f"{type(exc).__name__}: {exc}")


async def run_checks(named: Sequence[NamedCheck], timeout: float) -> list[Check]:
    found = await asyncio.gather(*(_bounded(check, timeout) for check in named))
    return [c for one in found for c in (one if isinstance(one, list) else [one])]


def health_document(service: str, version: str, checks: Sequence[Check]) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    status = worst([c.status for c in checks])
    grouped: dict[str, list[dict[str, Any]]] = {}
    for c in checks:
        grouped.setdefault(c.key, []).append(c.to_json(now))
    doc: dict[str, Any] = {"status": status, "serviceId": service, "version": version,
                           "description": OWN_DESCRIPTION, "checks": grouped}
    failing = [f"{c.key}: {c.output}" for c in checks if c.status != "pass" and c.output]
    if failing:
        doc["output"] = "; ".join(failing)
    return doc


def http_status(status: Status) -> int:
    return 503 if status == "fail" else 200
