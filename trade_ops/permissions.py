"""Each service's NATS permissions, derived from the bus contract (services.contract.TOPOLOGY).

A service may publish only the subject families the contract says it publishes (only
live-gateway publishes fills; only oms publishes `orders.new`), the request subjects it
asks, and the JetStream API calls that its streams and consumers need:

    publish    its families; its requests; $JS.API.INFO, STREAM.NAMES, and for each
               stream it touches STREAM.INFO/CREATE/UPDATE.<S>; for each stream it
               consumes CONSUMER.*.<S>[.>],
               CONSUMER.DURABLE.CREATE.<S>.> and CONSUMER.MSG.NEXT.<S>.> (create, info,
               delete, pull), $JS.ACK.<S>.>
               (acks), $JS.FC.<S>.> (ordered consumers' flow control) and the reads
               of one message (STREAM.MSG.GET.<S>, DIRECT.GET.<S>: risk's last quote);
               CONSUMER.DELETE.<S>.<durable> for each durable it retired
    subscribe  the families it consumes (core subscriptions, e.g. risk's ticks); the
               subjects it serves (risk.check); its own reply inbox _INBOX.<name>.>
               (JetStream acks, API replies and push deliveries all arrive there)
    responses  allowed to answer a request only if it serves one

A service the contract does not know gets its inbox and nothing else. The CLI's own
user (credentials.ADMIN_USER) has no restriction.

Known limit: STREAM.UPDATE lets a service change its streams' configuration, and a
stream's RePublish target is published by the server itself; creating the streams at
`up` as the operator and denying services STREAM.CREATE/UPDATE would close that.
"""

from __future__ import annotations

from typing import Any

from services import contract

__all__ = ["BENCH_SUBJECTS", "bench_permissions", "nats_permissions", "service_permissions", "uses_valkey"]

# Bench workers on other hosts meet their coordinator here (trade_ops/bench/join.py), as a
# user of their own that may touch nothing else: control traffic never mixes with the
# subjects being measured, and no service may read or write it.
BENCH_SUBJECTS = "trade-ops.bench.>"


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
    for stream in needs.streams:
        publish += [f"$JS.API.STREAM.{op}.{stream}" for op in ("INFO", "CREATE", "UPDATE")]
    for stream in _consumed_streams(needs):
        publish += [f"$JS.API.CONSUMER.*.{stream}", f"$JS.API.CONSUMER.*.{stream}.>",
                    f"$JS.API.CONSUMER.DURABLE.CREATE.{stream}.>", f"$JS.API.CONSUMER.MSG.NEXT.{stream}.>",
                    f"$JS.ACK.{stream}.>", f"$JS.FC.{stream}.>", f"$JS.API.STREAM.MSG.GET.{stream}",
                    f"$JS.API.DIRECT.GET.{stream}", f"$JS.API.DIRECT.GET.{stream}.>"]
    publish += [f"$JS.API.CONSUMER.DELETE.{stream}.{durable}" for stream, durable in needs.retired]
    subscribe = [*_family_subjects((*needs.consumes, *needs.serves)), inbox]
    perms: dict[str, Any] = {"publish": {"allow": publish}, "subscribe": {"allow": subscribe}}
    if needs.serves:
        perms["allow_responses"] = True
    return perms


def bench_permissions(user: str) -> dict[str, Any]:
    """The bench workers' NATS user: the bench control subjects and its own inbox, nothing else."""
    inbox = contract.inbox_prefix(user) + ".>"
    return {"publish": {"allow": [BENCH_SUBJECTS]}, "subscribe": {"allow": [BENCH_SUBJECTS, inbox]}}


def nats_permissions(services: list[str]) -> dict[str, dict[str, Any]]:
    return {name: service_permissions(name) for name in services}


def uses_valkey(name: str) -> bool:
    """Whether the service gets a valkey user (a service the contract does not know does)."""
    needs = contract.TOPOLOGY.get(name)
    return needs is None or needs.valkey
