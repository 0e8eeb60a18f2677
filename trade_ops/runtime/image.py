"""The service image: built from the project's Dockerfile, once per change of its inputs.

The build context is made here, not read from the working tree: the Dockerfile,
pyproject.toml, the three source folders and, when the base image runs the host's
Python, a `wheels/` folder that pip fills from what it already has (its cache, its
configured indexes) so the build itself needs no network. The image is labelled with
a hash of all of it: an unchanged project reuses the image without a build.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import subprocess
import sys
import tarfile
import tempfile
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from services import env
from trade_ops.errors import StartupError

__all__ = ["BUILD_KEY_LABEL", "ImageBuildError", "ensure_image", "project_root"]

BUILD_KEY_LABEL = "trade-ops.build-key"
SOURCES = ("trade_ops", "services", "scenarios")
LOG_LINES = 20
_SKIP = ("__pycache__", ".pyc", ".mypy_cache", ".pytest_cache")


class ImageBuildError(StartupError):
    """The image build failed; `detail` holds the build's last lines."""


def project_root() -> Path:
    """The folder holding the Dockerfile: the source tree trade-ops runs from."""
    return Path(__file__).resolve().parents[2]


def _files(root: Path) -> Iterator[tuple[str, Path]]:
    yield "Dockerfile", root / "Dockerfile"
    yield "pyproject.toml", root / "pyproject.toml"
    for folder in SOURCES:
        for path in sorted((root / folder).rglob("*")):
            if path.is_file() and not any(part in str(path) for part in _SKIP):
                yield str(path.relative_to(root)), path


def _requirements(root: Path) -> list[str]:
    deps: list[str] = tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]
    return deps


def _wheels(root: Path, cache: Path, python: str, say: Callable[[str], None]) -> list[Path]:
    """Every dependency as a wheel for the image's Python (its full version: markers
    such as python_full_version < "3.11.3" must be read for it, not for ours), from
    pip's cache and configured indexes; [] if pip fails."""
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as req:
        req.write("\n".join(_requirements(root)))
        req.flush()
        say("collecting wheels for the image with pip download")
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary", ":all:",
                   "--python-version", python, "-d", str(cache), "-r", req.name]
        done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        say(f"pip download failed, the build installs from PyPI: {done.stderr.strip()[-300:]}")
        return []
    return sorted(cache.glob("*.whl"))


def _context(root: Path, wheels: list[Path]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, path in _files(root):
            tar.add(path, arcname=name, recursive=False)
        for wheel in wheels:
            tar.add(wheel, arcname=f"wheels/{wheel.name}")
    buf.seek(0)
    return buf


def _key(root: Path, base_id: str) -> str:
    digest = hashlib.sha256(f"{base_id}\n".encode())
    for name, path in _files(root):
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
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


def _build(client: Any, context: io.BytesIO, tag: str, args: dict[str, str], key: str) -> None:
    import docker.errors

    log: list[str] = []
    try:
        for chunk in client.api.build(fileobj=context, custom_context=True, tag=tag, buildargs=args,
                                      labels={BUILD_KEY_LABEL: key}, rm=True, forcerm=True, decode=True):
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
                 root: Path | None = None, wheel_cache: Path | None = None) -> bool:
    """Build `tag` from the project on `base` unless an image of the same inputs exists; True if built."""
    import docker.errors

    root = root or project_root()
    if not (root / "Dockerfile").is_file():
        raise StartupError(f"no Dockerfile in {root}: the Docker runtime builds the image from the project's "
                           "source tree", detail="run trade-ops from a checkout of the project")
    base_image = _ensure_base(client, base, say)
    key = _key(root, base_image.id)
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
    wheels = _wheels(root, cache, python, say) if same and sys.platform == "linux" else []
    say(f"building {tag} on {base}" + (f" ({len(wheels)} wheels, offline)" if wheels else " (pip from PyPI)"))
    args = {"BASE_IMAGE": base}
    _build(client, _context(root, wheels), tag, args, key)
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
