"""Bench scenarios: TOML files in scenarios/ (or the copy packaged as trade_ops/scenarios),
each overridable by flags. The hash covers the effective definition, flags applied, so two
runs with the same hash measured the same thing.

    name = "load"                 description = "..."
    model = "closed"              # or "open"
    concurrency = 10              requests = 1000        # closed
    rate = 100.0                  duration_s = 30        # open
    warmup_requests = 50          warmup_s = 2.0
    timeout_s = 5.0               max_time_s = 900
    slo = ["p50<50ms", "p99<100ms", "errors==0"]
    find_max = false              # capacity: search the highest rate meeting the SLOs
    [order]                       # oms and risk bodies: account, symbol, quantity, ...
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

from trade_ops.errors import StackFileError, UsageError

__all__ = ["DEFAULT_SCENARIO", "KEYS", "Scenario", "default_scenario", "find_scenario", "known_scenarios",
           "load_scenario", "resolve"]

KEYS = {"name": str, "description": str, "target": str, "model": str, "rate": float,
        "duration_s": float, "concurrency": int, "requests": int, "warmup_requests": int,
        "warmup_s": float, "timeout_s": float, "max_time_s": float, "slo": list, "find_max": bool,
        "find_max_start": float, "find_max_limit": float, "find_max_step_s": float, "max_lag_ms": float,
        "interval_s": float, "order": dict}
DEFAULT_SCENARIO = "latency"
# A target whose requests take far longer than an order's has its own default.
_TARGET_DEFAULTS = {"sink": "sink"}
_SOURCE_TREE = Path(__file__).resolve().parents[2] / "scenarios"
_MAY_BE_ZERO = {"warmup_requests", "warmup_s", "max_lag_ms"}  # every other number must be above 0


@dataclass
class Scenario:
    name: str
    definition: dict[str, Any]
    source: str
    overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def hash(self) -> str:
        return hashlib.sha256(orjson.dumps(self.definition, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]

    def get(self, key: str, default: Any = None) -> Any:
        return self.definition.get(key, default)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "hash": self.hash, "definition": self.definition, "source": self.source,
                "overrides": self.overrides}


def default_scenario(target: str) -> str:
    """The scenario a target runs when none is named."""
    return _TARGET_DEFAULTS.get(target, DEFAULT_SCENARIO)


def _dirs() -> list[Path]:
    dirs = [Path.cwd() / "scenarios"]
    try:
        packaged = resources.files("trade_ops").joinpath("scenarios")
        dirs.append(Path(str(packaged)))
    except (ModuleNotFoundError, TypeError):
        pass
    dirs.append(_SOURCE_TREE)
    return dirs


def known_scenarios() -> list[str]:
    names: set[str] = set()
    for d in _dirs():
        if d.is_dir():
            names.update(p.stem for p in d.glob("*.toml"))
    return sorted(names)


def find_scenario(name_or_file: str) -> Path:
    path = Path(name_or_file)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise UsageError(f"scenario file {path} does not exist")
        return path
    for d in _dirs():
        candidate = d / f"{name_or_file}.toml"
        if candidate.is_file():
            return candidate
    known = ", ".join(known_scenarios()) or "none"
    raise UsageError(f"unknown scenario {name_or_file!r}; known: {known}")


def _check(definition: dict[str, Any], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in definition.items():
        kind = KEYS.get(key)
        if kind is None:
            raise StackFileError(f"{where}: unknown key {key!r}; known: {', '.join(KEYS)}")
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise StackFileError(f"{where}: {key} must be {kind.__name__}, not {value!r}")
        if kind in (int, float) and isinstance(value, int | float) \
                and (value < 0 or (value == 0 and key not in _MAY_BE_ZERO)):
            bound = ">= 0" if key in _MAY_BE_ZERO else "> 0"
            raise StackFileError(f"{where}: {key} must be {bound}, not {value!r}")
        out[key] = value
    if out.get("model") not in (None, "open", "closed"):
        raise StackFileError(f"{where}: model must be 'open' or 'closed'")
    return out


def load_scenario(name_or_file: str) -> Scenario:
    path = find_scenario(name_or_file)
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise StackFileError(f"scenario {path} cannot be read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise StackFileError(f"scenario {path} is not valid TOML: {exc}") from None
    definition = _check(data, f"scenario {path}")
    return Scenario(str(definition.get("name", path.stem)), definition, str(path))


def resolve(name_or_file: str | None, overrides: dict[str, Any]) -> Scenario:
    """The scenario named (DEFAULT_SCENARIO when none is), with every flag that was given
    applied over it: load flags replace its load, SLO flags add to its SLOs."""
    given = {k: v for k, v in overrides.items() if v is not None and v != []}
    sc = load_scenario(name_or_file or DEFAULT_SCENARIO)
    definition = dict(sc.definition)
    if "order" in given:  # --order KEY=VALUE flags go over the scenario's [order] table
        given["order"] = {**definition.get("order", {}), **given["order"]}
    if "slo" in given:  # flags add to the scenario's SLOs
        given["slo"] = [*definition.get("slo", []), *given["slo"]]
    if "rate" in given and "model" not in given:
        given["model"] = "open"
    if given.get("model") == "closed" or (definition.get("model") == "closed" and "model" not in given):
        definition.pop("rate", None)  # a closed loop has no arrival rate
    if given.get("model") == "open" and definition.get("model") == "closed" and "concurrency" not in given:
        definition.pop("concurrency", None)  # N in flight is no connection cap for an arrival rate
    if given.get("model") == "open" and "rate" not in given and not definition.get("rate"):
        raise UsageError("an open-loop run needs --rate")
    if "model" not in definition and "model" not in given:
        given["model"] = "open" if definition.get("rate") else "closed"
    # an explicit bound replaces the scenario's other bound instead of racing it
    if "duration_s" in given and "requests" not in given:
        definition.pop("requests", None)
    if "requests" in given and "duration_s" not in given:
        definition.pop("duration_s", None)
    definition.update(_check(given, "flags"))
    return Scenario(sc.name, definition, sc.source, given)
