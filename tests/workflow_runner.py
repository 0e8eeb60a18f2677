"""Run one job of a GitHub Actions workflow here, as a runner would, for the template test.

It knows what the trade-ops template uses, and fails on anything else (so the test fails
when the template starts to use something this runner would fake):

    run:      bash --noprofile --norc -eo pipefail, in the workspace, with the workflow's,
              the job's and the step's env, what earlier steps wrote to $GITHUB_ENV, and
              GITHUB_WORKSPACE, RUNNER_TEMP, GITHUB_STEP_SUMMARY, CI
    if:       success() (the default), always(), hashFiles(GLOB or env.NAME) != ''
    ${{ }}:   github.workspace, runner.temp, env.NAME
    uses:     actions/checkout and actions/setup-python do nothing (the workspace is the
              checkout; the Python on PATH is set up); actions/upload-artifact records the
              paths it would upload and whether each exists
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = ["JobRun", "StepRun", "run_job"]

_EXPR = re.compile(r"\$\{\{\s*(.+?)\s*\}\}")
_HASH_FILES = re.compile(r"hashFiles\((.+)\)\s*!=\s*''")


@dataclass
class StepRun:
    name: str
    outcome: str  # success, failure, skipped
    code: int = 0
    output: str = ""


@dataclass
class JobRun:
    steps: list[StepRun] = field(default_factory=list)
    uploads: dict[Path, bool] = field(default_factory=dict)  # path -> it exists

    def step(self, prefix: str) -> StepRun:
        return next(s for s in self.steps if s.name.startswith(prefix))


class _Context:
    def __init__(self, workspace: Path, temp: Path, env: dict[str, str]) -> None:
        self.workspace, self.temp, self.env = workspace, temp, env

    def value(self, expr: str) -> str:
        if expr == "github.workspace":
            return str(self.workspace)
        if expr == "runner.temp":
            return str(self.temp)
        if expr.startswith("env."):
            return self.env.get(expr.removeprefix("env."), "")
        raise NotImplementedError(f"expression {expr!r}")

    def expand(self, text: str) -> str:
        return _EXPR.sub(lambda m: self.value(m.group(1)), text)

    def condition(self, expr: str | None, failed: bool) -> bool:
        expr = _EXPR.sub(lambda m: m.group(1), expr or "success()").strip()
        if expr == "always()":
            return True
        if expr == "success()":
            return not failed
        m = _HASH_FILES.fullmatch(expr)
        if m:
            arg = m.group(1).strip()
            pattern = arg.strip("'") if arg.startswith("'") else self.value(arg)
            return not failed and any(p.is_file() for p in self.workspace.glob(pattern))
        raise NotImplementedError(f"if: {expr!r}")


def _uses(step: dict[str, Any], ctx: _Context, run: JobRun) -> None:
    action = str(step["uses"]).split("@")[0]
    if action in ("actions/checkout", "actions/setup-python"):
        return
    if action == "actions/upload-artifact":
        for line in str(step["with"]["path"]).splitlines():
            if line.strip():
                path = Path(ctx.expand(line.strip()))
                run.uploads[path] = path.exists()
        return
    raise NotImplementedError(f"uses: {action}")


def run_job(workflow: Path, job: str, workspace: Path, temp: Path, base_env: dict[str, str],
            overrides: dict[str, str] | None = None, timeout_s: float = 600.0,
            only: Callable[[str], bool] | None = None) -> JobRun:
    """Run the job's steps in order; `overrides` replace the workflow's own env values (as a
    user edits them in their copy); `only`: run just the steps whose name it accepts."""
    doc = yaml.safe_load(workflow.read_text())
    github_env, summary = temp / "github_env", temp / "step_summary.md"
    github_env.write_text("")
    env = {**base_env, "CI": "true", "GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(workspace),
           "RUNNER_TEMP": str(temp), "GITHUB_ENV": str(github_env), "GITHUB_STEP_SUMMARY": str(summary)}
    ctx = _Context(workspace, temp, env)
    for scope in (doc.get("env") or {}, doc["jobs"][job].get("env") or {}):
        env.update({k: ctx.expand(str(v)) for k, v in scope.items()})
    env.update(overrides or {})
    run, failed = JobRun(), False
    for step in doc["jobs"][job]["steps"]:
        name = str(step.get("name") or step.get("uses"))
        if (only is not None and not only(name)) or not ctx.condition(step.get("if"), failed):
            run.steps.append(StepRun(name, "skipped"))
            continue
        if "uses" in step:
            _uses(step, ctx, run)
            run.steps.append(StepRun(name, "success"))
            continue
        step_env = {**env, **{k: ctx.expand(str(v)) for k, v in (step.get("env") or {}).items()}}
        proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c",
                               ctx.expand(str(step["run"]))],
                              cwd=workspace, env=step_env, capture_output=True, text=True, timeout=timeout_s)
        for line in github_env.read_text().splitlines():  # what the step exported for the next ones
            key, sep, value = line.partition("=")
            if sep:
                env[key] = value
        github_env.write_text("")
        failed |= proc.returncode != 0
        run.steps.append(StepRun(name, "failure" if proc.returncode else "success", proc.returncode,
                                 proc.stdout + proc.stderr))
    return run
