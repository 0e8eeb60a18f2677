"""Each service's NATS permissions, derived from the bus contract (services.contract.TOPOLOGY).

A service may publish only the subject families the contract says it publishes (only
live-gateway publishes fills; only oms publishes `orders.new`), the request subjects it
asks, and the JetStream API calls its job needs, no more: the streams and durable
consumers are the operator's (services/provision.py makes them at `up`).

    publish    its families; its requests; $JS.API.INFO, STREAM.NAMES;
               STREAM.INFO.<S> for each stream it touches (nothing that creates, updates,
               purges, seals or deletes one);
               for each stream it consumes: CONSUMER.CREATE.<S> and no more (an ephemeral
               or ordered consumer: the server refuses a durable name there, and a named
               one needs CONSUMER.CREATE.<S>.<name>), $JS.FC.<S>.> (ordered consumers' flow
               control), the reads of one message (STREAM.MSG.GET.<S>, DIRECT.GET.<S>:
               risk's last quote);
               for each of its own durables: CONSUMER.INFO.<S>.<durable> and the acks
               $JS.ACK.<S>.<durable>.> (no consumer delete, no other durable's acks)
    subscribe  the families it consumes (core subscriptions, e.g. risk's ticks); the
               subjects it serves (only risk may subscribe to risk.check); its own reply
               inbox _INBOX.<name>.> (JetStream acks, API replies and its durables'
               deliveries, contract.deliver_subject, all arrive there)
    responses  allowed to answer a request only if it serves one

A service the contract does not know gets its inbox and nothing else. The CLI's own
user (credentials.ADMIN_USER) has no restriction: it is the operator.

Valkey (`valkey_rules`): each service's ACL user may touch only the key prefixes the
contract gives it (`keys`) with only the commands the services send (VALKEY_COMMANDS:
no FLUSH*, SWAPDB, MIGRATE, KEYS, SCAN, DEBUG, CONFIG, SCRIPT FLUSH, SELECT...), and a
`guarded` key (the operator's halts) field by field only: no service may delete it.
"""

from __future__ import annotations

from typing import Any

from services import contract

__all__ = ["BENCH_SUBJECTS", "VALKEY_COMMANDS", "bench_permissions", "nats_permissions",
           "service_permissions", "uses_valkey", "valkey_rules"]

# Bench workers on other hosts meet their coordinator here (trade_ops/bench/join.py), as a
# user of their own that may touch nothing else: control traffic never mixes with the
# subjects being measured, and no service may read or write it.
BENCH_SUBJECTS = "trade-ops.bench.>"

# Every command the services send (their stores, the Lua scripts they load and the client
# library's own: PING, CLIENT SETINFO at connect, WATCH/MULTI/EXEC of a transaction).
VALKEY_COMMANDS = (
    "ping", "client|setinfo", "client|setname", "time",
    "get", "set", "mget", "del", "unlink", "exists", "expire", "pexpire", "ttl", "pttl",
    "hget", "hset", "hdel", "hgetall", "hmget", "hlen",
    "zadd", "zrem", "zrange", "zrevrange", "zrangebyscore", "zremrangebyrank", "zremrangebyscore",
    "zmscore", "zscore", "zcard",
    "sadd", "srem", "smembers", "scard",
    "lpush", "rpush", "ltrim", "lrange", "llen",
    "evalsha", "eval", "script|load", "script|exists",
    "watch", "unwatch", "multi", "exec", "discard",
)
# A guarded hash: read, and set or clear one field (never DEL, EXPIRE, RENAME...).
GUARDED_COMMANDS = ("hget", "hgetall", "hset", "hdel")


def _family_subjects(names: tuple[str, ...]) -> list[str]:
    return [contract.FAMILIES[n].wildcard for n in names]


def _consumed_streams(needs: contract.ServiceTopology) -> list[str]:
    used = {contract.FAMILIES[f].stream for f in needs.consumes}
    return [s for s in contract.STREAMS if s in used]


def service_permissions(name: str) -> dict[str, Any]:
    """The `permissions` block of nats.conf for the service `name`."""
    inbox = contract.inbox_prefix(name) + ".>"
    needs = contract.TOPOLOGY.get(name)
    if needs is None:
        return {"publish": {"allow": []}, "subscribe": {"allow": [inbox]}}
    publish = _family_subjects((*needs.publishes, *needs.requests))
    publish += ["$JS.API.INFO", "$JS.API.STREAM.NAMES"]
    publish += [f"$JS.API.STREAM.INFO.{stream}" for stream in needs.streams]
    for stream in _consumed_streams(needs):
        publish += [f"$JS.API.CONSUMER.CREATE.{stream}", f"$JS.FC.{stream}.>",
                    f"$JS.API.STREAM.MSG.GET.{stream}", f"$JS.API.DIRECT.GET.{stream}",
                    f"$JS.API.DIRECT.GET.{stream}.>"]
    for durable in needs.durables:
        publish += [f"$JS.API.CONSUMER.INFO.{durable.stream}.{durable.name}",
                    f"$JS.ACK.{durable.stream}.{durable.name}.>"]
    subscribe = [*_family_subjects((*needs.consumes, *needs.serves)), inbox]
    perms: dict[str, Any] = {"publish": {"allow": publish}, "subscribe": {"allow": subscribe}}
    if needs.serves:
        perms["allow_responses"] = True
    return perms


def bench_permissions(user: str) -> dict[str, Any]:
    """The bench workers' NATS user: the bench control subjects and its own inbox, nothing else."""
    inbox = contract.inbox_prefix(user) + ".>"
    return {"publish": {"allow": [BENCH_SUBJECTS]}, "subscribe": {"allow": [BENCH_SUBJECTS, inbox]}}


def valkey_rules(name: str) -> str:
    """The ACL rules of the service `name`'s valkey user (after `on #<password digest>`).
    A service the contract does not know (a test's app) keeps every key, with the same
    commands."""
    needs = contract.TOPOLOGY.get(name)
    allowed = " ".join(f"+{c}" for c in VALKEY_COMMANDS)
    keys = " ".join(f"~{prefix}*" for prefix in needs.keys) if needs else "~*"
    rules = f"resetkeys {keys} resetchannels -@all {allowed}".replace("  ", " ")
    for key in needs.guarded if needs else ():
        rules += f" (~{key} -@all {' '.join(f'+{c}' for c in GUARDED_COMMANDS)})"
    return rules


def nats_permissions(services: list[str]) -> dict[str, dict[str, Any]]:
    return {name: service_permissions(name) for name in services}


def uses_valkey(name: str) -> bool:
    """Whether the service gets a valkey user (a service the contract does not know does)."""
    needs = contract.TOPOLOGY.get(name)
    return needs is None or needs.valkey
