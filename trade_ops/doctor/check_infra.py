"""Infrastructure: valkey, nats (with JetStream and its streams), the lake."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import httpx

from services import contract
from trade_ops.credentials import valkey_login
from trade_ops.doctor import monitoring
from trade_ops.doctor.check_disk import LOG_LINES, store_problem
from trade_ops.doctor.lake_probe import is_local, probe_tables
from trade_ops.doctor.model import CheckResult
from trade_ops.doctor.target import Target
from trade_ops.logfiles import Line
from trade_ops.processes import uptime
from trade_ops.stack import Component

__all__ = ["EXPECTED_TABLES", "check_lake", "check_nats", "check_valkey", "expected_streams", "nats_info"]

# Delta tables and the service that writes each: a missing table matters only when its writer runs.
EXPECTED_TABLES = contract.TABLES
# Orders, fills and alt-data events are sparse: their tables appear with the first event,
# so a young stack without them is fine. Ticks flow all the time: no market_ticks is a problem.
SPARSE_WRITERS = {"sink-alt", "event-writer", "pnl"}
FIRST_BATCH_S = 30.0  # a writer started within this may not have committed its first batch yet
SAFE_EVICTION = {"noeviction", "volatile-lru", "volatile-lfu", "volatile-ttl", "volatile-random"}


def expected_streams() -> list[str]:
    """The streams of the bus contract (services.contract imports no I/O library: cheap)."""
    return list(contract.STREAMS)


async def _resp(reader: asyncio.StreamReader) -> str:
    """One RESP reply (simple string, error or bulk string) as text."""
    line = (await reader.readline()).rstrip(b"\r\n")
    if line.startswith(b"$"):
        size = int(line[1:])
        return "" if size < 0 else (await reader.readexactly(size + 2))[:-2].decode(errors="replace")
    if line.startswith(b"-"):
        raise OSError(line[1:].decode(errors="replace"))
    if not line:
        raise OSError("connection closed")
    return line[1:].decode(errors="replace")


def _resp_command(*parts: str) -> bytes:
    """A RESP array (needed for arguments with spaces or any byte, like a password)."""
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        raw = part.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(out)


async def _valkey_info(host: str, port: int, login: tuple[str, str] | None = None
                       ) -> tuple[float, dict[str, str]]:
    """(PING ms, INFO fields), in plain RESP: no client library to import."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        if login is not None:  # the CLI's own ACL user (credentials.py)
            writer.write(_resp_command("AUTH", *login))
            await _resp(reader)
        loop = asyncio.get_running_loop()
        started = loop.time()
        writer.write(b"PING\r\n")
        if await _resp(reader) != "PONG":
            raise OSError("PING not answered with PONG")
        ping_ms = (loop.time() - started) * 1000
        writer.write(b"INFO\r\n")
        text = await _resp(reader)
    finally:
        writer.close()
    pairs = (line.split(":", 1) for line in text.splitlines() if ":" in line and line[0] != "#")
    fields = {k: v.strip() for k, v in pairs}
    return ping_ms, fields


async def check_valkey(target: Target, c: Component, r: CheckResult) -> None:
    r.data["address"] = target.address(c.name)
    try:
        target.contacted.add(f"{c.host}:{c.port or 6379}")
        ping_ms, info = await asyncio.wait_for(
            _valkey_info(c.host, c.port or 6379, valkey_login(target.logins)), target.timeout)
    except (OSError, TimeoutError, ValueError) as exc:
        if str(exc).startswith(("NOAUTH", "WRONGPASS")):  # up and serving, to its own users only
            r.summary = "requires credentials"
            r.details.append(f"{c.host}:{c.port} answers only authenticated clients; "
                             "doctor has no credentials for it here: memory and eviction not examined")
            return
        r.summary = "unreachable"
        r.data["unreachable"] = True
        r.fail(f"no PING answer at {c.host}:{c.port}: {str(exc) or 'timed out'}", target.up_remedy(c.name))
        return
    r.data["ping_ms"] = round(ping_ms, 2)
    version = info.get("valkey_version") or info.get("redis_version")
    policy = info.get("maxmemory_policy", "?")
    used, limit = int(info.get("used_memory", 0)), int(info.get("maxmemory", 0))
    r.data.update(version=version, used_memory=used, maxmemory=limit, maxmemory_policy=policy)
    r.summary = f"{version} · PING {r.data['ping_ms']} ms"
    r.details.append(f"memory {info.get('used_memory_human', used)}"
                     f"{f' of {limit >> 20} MiB' if limit else ' (no maxmemory)'} · eviction {policy}")
    if policy not in SAFE_EVICTION:
        r.warn(f"maxmemory-policy {policy} may evict orders and idempotency keys",
               f"manual step: set maxmemory-policy noeviction in the configuration of the valkey at "
               f"{c.host}:{c.port} (at run time: CONFIG SET maxmemory-policy noeviction)")
    if limit and used > 0.9 * limit:
        r.warn(f"memory {used * 100 // limit}% of maxmemory",
               f"manual step: raise the maxmemory of the valkey at {c.host}:{c.port}, or free keys")


async def nats_info(host: str, port: int, timeout: float) -> dict[str, Any]:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        line = await asyncio.wait_for(reader.readline(), timeout)
    finally:
        writer.close()
    if not line.startswith(b"INFO "):
        raise OSError(f"not a NATS server (said {line[:40]!r})")
    info: dict[str, Any] = json.loads(line[5:])
    return info


def _log_end(target: Target, name: str) -> list[Line]:
    """The last lines `name` logged, as its runtime keeps them (a file, or the engine's log)."""
    from trade_ops import runtime

    try:
        return runtime.of(target.run_dir).log_lines(target.run_dir, [name], lines=LOG_LINES)
    except Exception:  # no log to read: the disk check stands on the free space alone
        return []


async def check_nats(target: Target, http: httpx.AsyncClient, c: Component, r: CheckResult) -> None:
    monitor = monitoring.where(target) if monitoring.available(target) else None
    r.data.update(address=target.address(c.name), monitor=monitor)
    if c.port is not None:  # only --nats-monitor given: the monitoring endpoint is all there is
        try:
            target.contacted.add(f"{c.host}:{c.port}")
            info = await nats_info(c.host, c.port, target.timeout)
        except (OSError, TimeoutError, ValueError) as exc:
            r.summary = "unreachable"
            r.data["unreachable"] = True
            r.fail(f"no NATS server at {c.host}:{c.port}: {str(exc) or 'timed out'}",
                   target.up_remedy(c.name))
            return
        r.data["version"] = info.get("version")
        r.summary = f"{info.get('version')}"
        if c.name in target.processes:  # started here: its store and its log are ours to read
            problem = store_problem(target.run_dir.nats_store, _log_end(target, c.name), target.flags(),
                                    c.name)
            if problem is not None:
                r.summary = "cannot store"
                r.fail(*problem)
                return
    if monitor is None:
        r.details.append("connected (monitoring not examined: give --nats-monitor URL)")
        return
    healthz, jsz = await asyncio.gather(
        monitoring.read(target, http, "healthz", **{"js-enabled-only": True}),
        monitoring.read(target, http, "jsz", streams=True))
    if healthz.status is None:
        fix = target.up_remedy(c.name) if target.nats_system is not None \
            else f"start nats-server with --http_port {c.monitor_port}"
        r.warn(f"monitoring ({monitor}) unreachable ({healthz.error}): stream and lag checks skipped", fix)
        return
    if healthz.status != 200:
        if target.explicit:  # another deployment may use core NATS only: no JetStream is no fault
            r.details.append(f"JetStream not enabled at {monitor} (core NATS)")
            r.data["jetstream"] = False
            return
        said = (healthz.doc or {}).get("error") or (healthz.doc or {}).get("status") or healthz.error
        r.fail(f"JetStream not healthy: healthz answered {healthz.status} {str(said)[:120]}",
               "start nats-server with --jetstream (manual step)")
        return
    r.data["jetstream"] = True
    r.details.append("connected · JetStream enabled")
    doc = jsz.doc or {}
    present = {s.get("name") for a in doc.get("account_details", []) for s in a.get("stream_detail", [])}
    r.data["streams"] = sorted(n for n in present if n)
    # trade-ops' streams are expected where trade-ops' own services run, nowhere else.
    owns = await asyncio.gather(*(target.is_own(s.name) for s in target.services))
    if any(owns):
        missing = [s for s in expected_streams() if s not in present]
        if missing:
            fix = f"trade-ops restart{target.flags()}" if target.supervised \
                else "manual step: restart the trade-ops services (each creates its streams at start)"
            r.warn(f"streams missing: {', '.join(missing)} (the services create them at start)", fix)
        else:
            r.details.append(f"streams {', '.join(sorted(n for n in present if n))}")
    elif present:
        r.details.append(f"streams {', '.join(sorted(n for n in present if n))}")


async def check_lake(target: Target, c: Component, r: CheckResult) -> None:
    uri = target.lake_uri or target.stack.lake_uri(target.run_dir.path)
    r.data.update(uri=uri, address=uri)
    r.summary = uri
    if is_local(uri):
        root = Path(uri.removeprefix("file://"))
        # Never create it: doctor only looks (a lake dir made in a foreign cwd is litter).
        existing = next(p for p in (root, *root.parents) if p.exists())
        if not os.access(existing, os.W_OK | os.X_OK) or not existing.is_dir():
            r.fail(f"lake {root} is not writable ({existing} is not a writable directory)",
                   "set `uri` under [infra.lake] in the stack file to a writable directory or s3:// URL")
            return
        r.details.append("writable" if existing == root else "not created yet; its parent is writable")
    from trade_ops.doctor.lake_probe import endpoint

    where = endpoint(uri)
    if where:  # the child process reads the lake there: it is an address doctor reached
        target.contacted.add(where)
    # trade-ops' tables are expected where its own writers run; elsewhere they are only looked for.
    owns = await asyncio.gather(*(target.is_own(s.name) for s in target.services))
    writers = {s.name for s, own in zip(target.services, owns, strict=True) if own}
    foreign = not writers
    wanted = [t for t, w in EXPECTED_TABLES.items() if w in writers or foreign]
    try:
        present = await probe_tables(uri, wanted, target.timeout)
    except TimeoutError:
        r.summary = "not answering"
        r.fail(f"lake {uri} did not answer within {target.timeout:.1f}s (its storage endpoint hangs or "
               "refuses: see AWS_ENDPOINT_URL and the AWS_* settings)",
               f"check that the storage endpoint of {uri} answers (manual step)")
        return
    except (OSError, ValueError) as exc:
        r.summary = "unreachable"
        r.fail(f"lake {uri} cannot be read: {exc}", f"check that the storage endpoint of {uri} answers "
               "(manual step)")
        return
    have = [t for t in wanted if present.get(t)]
    missing = [t for t in wanted if not present.get(t)]
    r.data["tables"] = have
    if have:
        r.details.append(f"tables {', '.join(have)}")
    if foreign:  # another deployment: which tables it writes is its business
        r.details += [f"no table {', '.join(missing)}"] if missing else []
        return
    sparse = [t for t in missing if EXPECTED_TABLES[t] in SPARSE_WRITERS]
    if sparse:
        r.details.append(f"no events yet for {', '.join(sparse)}")
    missing = [t for t in missing if t not in sparse]
    if missing:
        owners = sorted({EXPECTED_TABLES[t] for t in missing})
        young = [o for o in owners if o in target.processes and target.processes[o].started_at
                 and uptime(target.processes[o].started_at) < FIRST_BATCH_S]
        if len(young) == len(owners):  # the current data: their writers started moments ago
            r.details.append(f"tables not written yet: {', '.join(missing)} (their writers started under "
                             f"{FIRST_BATCH_S:.0f}s ago)")
        else:
            r.warn(f"tables not written yet: {', '.join(missing)}", target.logs_remedy(owners[0]))
