"""The service image carries what the services import and nothing of the CLI, and builds from
any install of trade-ops: from the package's own files, never from a checkout's."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from tests.apps.stacks import ROOT
from trade_ops.runtime.image import build_files, service_requirements

CLI_ONLY = {"typer", "rich", "docker", "scipy", "matplotlib", "hdrhistogram", "psutil", "pyyaml", "httpx"}


def _name(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0]).lower()


def _closure(names: set[str]) -> set[str]:
    """The distributions `names` bring, their own requirements included (extras not followed)."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        todo += [_name(r) for r in requires if "extra ==" not in r]
    return seen


def _imported_by_services() -> set[str]:
    found: set[str] = set()
    for path in (ROOT / "services").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                found.add(node.module.split(".")[0])
    return {m for m in found if m not in sys.stdlib_module_names and m != "services"}


@pytest.mark.unit
def test_the_services_extra_is_what_the_services_import_and_in_the_dependencies() -> None:
    project: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extra = {_name(r) for r in project["optional-dependencies"]["services"]}
    provided = _closure(extra)
    owners = metadata.packages_distributions()
    missing = {m: owners.get(m) for m in _imported_by_services()
               if not {_name(d) for d in owners.get(m, [m])} & provided}
    assert missing == {}, f"imported by services/, not brought by the services extra: {missing}"
    assert extra <= {_name(r) for r in project["dependencies"]}  # `pip install .` runs them too
    assert not extra & CLI_ONLY  # the image carried scipy, matplotlib, docker, typer ... (1.1 GB)
    assert {_name(r) for r in service_requirements()} == extra


@pytest.mark.unit
def test_the_build_context_is_the_packaged_dockerfile_the_requirements_and_the_services() -> None:
    files = dict(build_files())
    assert files["Dockerfile"] == (ROOT / "trade_ops" / "runtime" / "Dockerfile").read_bytes()
    extra = tomllib.loads(files["pyproject.toml"].decode())["project"]["optional-dependencies"]["services"]
    assert {_name(r) for r in extra} == {_name(r) for r in service_requirements()}
    assert "services/oms/app.py" in files and "services/__main__.py" in files
    assert not [n for n in files if n.startswith(("trade_ops/", "scenarios/", "tests/"))]


@pytest.mark.docker
@pytest.mark.timeout(900)  # a cold build of the image on a busy 2-core machine takes minutes
def test_a_plain_pip_install_builds_the_image_and_it_runs_the_services(tmp_path: Path,
                                                                     docker_engine: Any) -> None:
    # `pip install .` (not -e) put trade_ops in site-packages, where `up --runtime docker` said
    # "no Dockerfile in .../site-packages": the package now carries all its build needs.
    from tests.test_docker import BASE_IMAGE

    engine = docker_engine
    site = tmp_path / "site"  # the wheel pip builds from this tree, installed apart from it
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site),
                    str(ROOT)], check=True, timeout=300)
    tag = f"trade-ops-installed-{tmp_path.name[-12:].lower()}:test"
    build = ("from trade_ops.runtime import image; from trade_ops.runtime.docker import connect; "
             f"assert image.__file__.startswith({str(site)!r}), image.__file__; "
             f"image.ensure_image(connect(), {tag!r}, {BASE_IMAGE!r}, print)")
    done = subprocess.run([sys.executable, "-c", build], cwd=tmp_path, env={"PATH": "/usr/bin:/bin",
                          "PYTHONPATH": str(site)}, capture_output=True, text=True, timeout=900, check=False)
    try:
        assert done.returncode == 0, done.stdout + done.stderr
        probe = ("import importlib.util as u, services.oms.app, services.sink_ticks.app; "
                 "print(sorted(m for m in ('typer', 'rich', 'docker', 'scipy', 'matplotlib', 'trade_ops') "
                 "if u.find_spec(m)))")
        out = engine.containers.run(tag, ["python", "-c", probe], remove=True).decode().strip()
        assert out == "[]", out  # the services import; nothing of the CLI is there
    finally:
        engine.images.remove(tag, force=True)
