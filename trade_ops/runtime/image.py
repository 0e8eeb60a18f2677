"""The service image: built from the Dockerfile shipped beside this module, once per change of
its inputs, from any install of trade-ops (a checkout or site-packages alike).

The build context is made here, not read from a working tree: the Dockerfile, a
pyproject.toml holding only the services' requirements (the `services` extra: from the
checkout's pyproject.toml, else from the installed package's metadata), the `services`
package where Python imports it from and, when the base image runs the host's Python, a
`wheels/` folder that pip fills from what it already has (its cache, its configured
indexes) so the build itself needs no network. The image is labelled with a hash of all
of it: an unchanged project reuses the image without a build.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import subprocess
import sys
import tarfile
import tempfile
import tomllib
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import services
from services import env
from trade_ops.errors import StartupError

__all__ = ["BUILD_KEY_LABEL", "ImageBuildError", "build_files", "ensure_image", "service_requirements"]

BUILD_KEY_LABEL = "trade-ops.build-key"
DOCKERFILE = Path(__file__).with_name("Dockerfile")
EXTRA = "services"  # pyproject.toml's extra: what the services import
SERVICES, BENCH = "services", "bench"  # the Dockerfile's targets
LOG_LINES = 20
_SKIP = ("__pycache__", ".pyc", ".mypy_cache", ".pytest_cache")


class ImageBuildError(StartupError):
    """The image build failed; `detail` holds the build's last lines."""


def requirements() -> tuple[list[str], list[str]]:
    """The `services` extra and every dependency: from the checkout's pyproject.toml when
    trade-ops runs from one (it is the truth there, whatever version is installed), else from
    the installed metadata."""
    checkout = Path(__file__).resolve().parents[2] / "pyproject.toml"
    if checkout.is_file():
        project = tomllib.loads(checkout.read_text()).get("project", {})
        if project.get("name") == "trade-ops":
            return (list(project.get("optional-dependencies", {}).get(EXTRA, [])),
                    list(project.get("dependencies", [])))
    marker = f'extra == "{EXTRA}"'
    requires = metadata.requires("trade-ops") or []
    return ([r.split(";")[0].strip() for r in requires if marker in r.replace("'", '"')],
            [r for r in requires if "extra ==" not in r.replace("'", '"')])


def service_requirements() -> list[str]:
    return requirements()[0]


def _pyproject(extra: list[str], dependencies: list[str]) -> bytes:
    def listed(reqs: list[str]) -> str:
        return ", ".join(json.dumps(r) for r in reqs)  # a JSON string is a TOML basic string

    return (f'[project]\nname = "trade-ops-image"\ndependencies = [{listed(dependencies)}]\n'
            f"[project.optional-dependencies]\n{EXTRA} = [{listed(extra)}]\n").encode()


def _tree(files: list[tuple[str, bytes]], name: str, package: Path) -> None:
    for path in sorted(package.rglob("*")) if package.is_dir() else []:
        if path.is_file() and not any(part in str(path) for part in _SKIP):
            files.append((f"{name}/{path.relative_to(package)}", path.read_bytes()))


def build_files(root: Path | None = None, target: str = "services") -> list[tuple[str, bytes]]:
    """The build context, name and content: the Dockerfile, pyproject.toml (the requirements
    alone) and the `services` package as Python imports it, and for the bench target the
    `trade_ops` package too. With `root`, a folder's own Dockerfile, pyproject.toml and
    services/ (if any) instead."""
    dockerfile = root / "Dockerfile" if root else DOCKERFILE
    pyproject = (root / "pyproject.toml").read_bytes() if root else _pyproject(*requirements())
    files = [("Dockerfile", dockerfile.read_bytes()), ("pyproject.toml", pyproject)]
    _tree(files, "services", root / "services" if root else Path(services.__file__).resolve().parent)
    if target == BENCH and root is None:
        _tree(files, "trade_ops", Path(__file__).resolve().parents[1])
    return files


def _requirements(files: list[tuple[str, bytes]], target: str) -> list[str]:
    project = tomllib.loads(dict(files)["pyproject.toml"].decode()).get("project", {})
    extra = list(project.get("optional-dependencies", {}).get(EXTRA, []))
    return extra + list(project.get("dependencies", [])) if target == BENCH else extra


def _wheels(files: list[tuple[str, bytes]], target: str, cache: Path, python: str,
            say: Callable[[str], None]) -> list[Path]:
    """Every dependency as a wheel for the image's Python (its full version: markers
    such as python_full_version < "3.11.3" must be read for it, not for ours), from
    pip's cache and configured indexes; [] if pip fails."""
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as req:
        req.write("\n".join(_requirements(files, target)))
        req.flush()
        say("collecting wheels for the image with pip download")
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary", ":all:",
                   "--python-version", python, "-d", str(cache), "-r", req.name]
        done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        say(f"pip download failed, the build installs from PyPI: {done.stderr.strip()[-300:]}")
        return []
    return sorted(cache.glob("*.whl"))


def _context(files: list[tuple[str, bytes]], wheels: list[Path]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
        for wheel in wheels:
            tar.add(wheel, arcname=f"wheels/{wheel.name}")
    buf.seek(0)
    return buf


def _key(files: list[tuple[str, bytes]], base_id: str) -> str:
    digest = hashlib.sha256(f"{base_id}\n".encode())
    for name, data in files:
        digest.update(name.encode() + b"\0" + data + b"\0")
    return digest.hexdigest()[:16]


def _base_python(client: Any, base: str) -> str:
    """The full Python version of the base image (3.11.2)."""
    command = ["python3", "-c", "import platform; print(platform.python_version())"]
    out: bytes = client.containers.run(base, command, remove=True)
    return out.decode().strip()


def _ensure_base(client: Any, base: str, say: Callable[[str], None]) -> Any:
    import docker.errors

    try:
        return client.images.get(base)
    except docker.errors.ImageNotFound:
        pass
    say(f"pulling {base}")
    try:
        return client.images.pull(base)
    except docker.errors.APIError as exc:
        raise StartupError(f"base image {base} is not here and cannot be pulled: {exc.explanation or exc}",
                           detail="build on a local Python image: --base-image NAME "
                                  f"(or {env.BASE_IMAGE}), e.g. one made by `docker import`") from None


def _build(client: Any, context: io.BytesIO, tag: str, args: dict[str, str], key: str,
           target: str | None) -> None:
    import docker.errors

    log: list[str] = []
    try:
        for chunk in client.api.build(fileobj=context, custom_context=True, tag=tag, buildargs=args,
                                      labels={BUILD_KEY_LABEL: key}, rm=True, forcerm=True, decode=True,
                                      target=target):
            if "stream" in chunk:
                log.extend(line for line in chunk["stream"].splitlines() if line.strip())
            if "error" in chunk:
                log.append(str(chunk["error"]).strip())
                raise ImageBuildError(f"the image build failed: {str(chunk['error']).strip()[:200]}",
                                      detail=f"--- last {LOG_LINES} lines of the build ---\n"
                                             + "\n".join(log[-LOG_LINES:]))
    except docker.errors.APIError as exc:
        raise ImageBuildError(f"the image build failed: {exc.explanation or exc}",
                              detail="\n".join(log[-LOG_LINES:]) or None) from None


def ensure_image(client: Any, tag: str, base: str, say: Callable[[str], None],
                 root: Path | None = None, wheel_cache: Path | None = None, target: str = SERVICES) -> bool:
    """Build `tag` (the Dockerfile's `target`: the services image, or the bench image) from the
    project on `base` unless an image of the same inputs exists; True if built."""
    import docker.errors

    files = build_files(root, target)
    base_image = _ensure_base(client, base, say)
    key = _key(files, f"{base_image.id} {target}")
    try:
        replaced = client.images.get(tag)
        if replaced.labels.get(BUILD_KEY_LABEL) == key:
            return False
    except docker.errors.ImageNotFound:
        replaced = None
    python = _base_python(client, base)
    same = python.split(".")[:2] == [str(sys.version_info.major), str(sys.version_info.minor)]
    # pip here fetches wheels that fit the image only for the same Python on Linux
    cache = wheel_cache or Path.home() / ".cache" / "trade-ops" / f"wheels-py{python}"
    wheels = _wheels(files, target, cache, python, say) if same and sys.platform == "linux" else []
    say(f"building {tag} on {base}" + (f" ({len(wheels)} wheels, offline)" if wheels else " (pip from PyPI)"))
    args = {"BASE_IMAGE": base}
    _build(client, _context(files, wheels), tag, args, key, None if root else target)
    if replaced is not None:
        _forget(client, replaced.id)
    return True


def _forget(client: Any, image_id: str) -> None:
    """Remove the image a rebuild took the tag from: each rebuild after a code change left
    a 1.1 GB untagged image behind (nine on this machine after a day). The engine refuses
    while a container (a stopped one too) or another tag uses it, and then it stays."""
    import docker.errors

    with contextlib.suppress(docker.errors.APIError):
        client.images.remove(image_id)
