"""The stack on Kubernetes: `trade-ops render kubernetes [--namespace NS] [--out DIR]`.

Derived from the same stack definition as `up` and compose.yaml (trade_ops/stack.toml and
a user stack file, through compose.container_specs: image, command, ports, environment,
health paths, memory), so the manifests cannot drift from what `up` runs:

    namespace.yaml         the namespace
    secrets.yaml           the credentials `up` generates (credentials.prepare: the same users,
                           passwords and NATS permissions), one Secret per service, valkey's and
                           nats' configurations, the bench workers' NATS user; written 0600, kept
                           out of version control like compose's ./secrets
    valkey.yaml nats.yaml  a StatefulSet with a volume (valkey's data, NATS JetStream's store)
                           and a Service each
    SERVICE.yaml           a Deployment and a Service per service: readiness from its health
                           path (503 is fail), liveness from its live path, resources
    network-policies.yaml  nothing reaches a pod unless the contract's TOPOLOGY says so: a
                           service reaches nats and valkey when it uses them, and the services
                           serving what it requests (oms -> risk); pods labelled
                           trade-ops/role=operator (doctor, the bench) reach every service
    topology.yaml          the operator's Job that makes every stream and durable consumer
                           (services/provision.py, as `up` and compose's one-shot do): the
                           services only bind to them (retried until the Job has run)
    bench-workers.yaml     the bench workers as an Indexed Job: each pod's shard is its
                           JOB_COMPLETION_INDEX, and it joins its coordinator through NATS
    stack.toml             a stack file naming the Services by their cluster DNS names, for
                           doctor and bench run inside the cluster (also a ConfigMap)

Inside the namespace every component is reached by its Service name at its stack port
(valkey:6379, http://oms:8099), as compose's network aliases are.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from services import contract
from services import env as names
from trade_ops import compose, compose_secrets, credentials, topology
from trade_ops.errors import UsageError
from trade_ops.stack import Stack

__all__ = ["DEFAULT_NAMESPACE", "OPERATOR_ROLE", "Manifests", "check_namespace", "render", "write"]

DEFAULT_NAMESPACE = "trade-ops"
OPERATOR_ROLE = "operator"  # pods labelled trade-ops/role=operator may reach every service
ROLE_LABEL = "trade-ops/role"
PART_OF = "app.kubernetes.io/part-of"
NAME = "app.kubernetes.io/name"
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
DATA_SIZE = {"valkey": "1Gi", "nats": "2Gi"}
# CPU requested: order entry gets the most; the fill path and the followers yield (stack nice)
_CPU_BY_NICE = ((0, "250m"), (5, "100m"), (10, "50m"))
SECRET_MOUNT = compose_secrets.IN_CONTAINER
BENCH_SECRET = "bench-workers"
TOPOLOGY_SECRET = "topology-credentials"  # the operator's NATS password, for the topology Job


@dataclass
class Manifests:
    namespace: str
    files: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # file -> its documents
    secret_files: frozenset[str] = frozenset({"secrets.yaml"})
    stack_toml: str = ""


def check_namespace(namespace: str) -> str:
    if not _DNS_LABEL.match(namespace):
        raise UsageError(f"namespace {namespace!r} is not a DNS label: lowercase letters, digits and '-', "
                         "at most 63, starting and ending with a letter or digit")
    return namespace


def _check_services(stack: Stack) -> None:
    for s in stack.services:
        if s.name not in contract.TOPOLOGY or not (s.app or "").startswith("services."):
            raise UsageError(f"service {s.name!r} in {stack.source} is not one of trade-ops' services "
                             f"({', '.join(contract.TOPOLOGY)}): render kubernetes deploys only those")


def _labels(name: str, component: str) -> dict[str, str]:
    return {NAME: name, PART_OF: "trade-ops", "app.kubernetes.io/component": component}


def _meta(name: str, ns: str, component: str) -> dict[str, Any]:
    return {"name": name, "namespace": ns, "labels": _labels(name, component)}


def _mebibytes(docker: str) -> str:
    """compose's '512m' as Kubernetes' '512Mi'."""
    return docker.removesuffix("m") + "Mi"


def _resources(memory: str, nice: int = 0) -> dict[str, Any]:
    cpu = next(c for n, c in reversed(_CPU_BY_NICE) if nice >= n)
    return {"requests": {"cpu": cpu, "memory": _mebibytes(memory)}, "limits": {"memory": _mebibytes(memory)}}


def _service(name: str, ns: str, component: str, ports: list[tuple[str, int]]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": _meta(name, ns, component),
            "spec": {"selector": {NAME: name},
                     "ports": [{"name": pname, "port": port, "targetPort": port} for pname, port in ports]}}


def _secret(name: str, ns: str, component: str, data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": _meta(name, ns, component), "type": "Opaque",
            "stringData": data}


def _secret_volume(secret: str) -> dict[str, Any]:
    return {"name": "credentials", "secret": {"secretName": secret, "defaultMode": 0o400}}


def _statefulset(spec: compose.ContainerSpec, ns: str, probes: dict[str, Any],
                 ports: list[tuple[str, int]]) -> dict[str, Any]:
    container = {"name": spec.name, "image": spec.image, "command": compose.secured_command(spec),
                 "ports": [{"name": p, "containerPort": n} for p, n in ports],
                 "volumeMounts": [{"name": "data", "mountPath": compose.DATA},
                                  {"name": "credentials", "mountPath": SECRET_MOUNT, "readOnly": True}],
                 "resources": _resources(spec.memory), **probes}
    if spec.environment:  # the stack file's `env` for the server
        container["env"] = [{"name": k, "value": v} for k, v in spec.environment.items()]
    pvc = {"metadata": {"name": "data"},
           "spec": {"accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": DATA_SIZE[spec.kind]}}}}
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": _meta(spec.name, ns, spec.kind),
            "spec": {"serviceName": spec.name, "replicas": 1, "selector": {"matchLabels": {NAME: spec.name}},
                     "template": {"metadata": {"labels": _labels(spec.name, spec.kind)},
                                  "spec": {"containers": [container],
                                           "volumes": [_secret_volume(f"{spec.name}-config")]}},
                     "volumeClaimTemplates": [pvc]}}


def _http_probe(path: str, port: int, period: int, failures: int) -> dict[str, Any]:
    return {"httpGet": {"path": path, "port": port}, "periodSeconds": period, "timeoutSeconds": 3,
            "failureThreshold": failures}


def _infra(specs: dict[str, compose.ContainerSpec], stack: Stack, ns: str) -> dict[str, list[dict[str, Any]]]:
    valkey, nats = specs["valkey"], specs["nats"]
    vport = stack["valkey"].port or 6379
    nport, mport = stack["nats"].port or 4222, stack["nats"].monitor_port or compose.NATS_MONITOR_PORT
    tcp = {"tcpSocket": {"port": vport}, "periodSeconds": 5, "timeoutSeconds": 3, "failureThreshold": 3}
    healthz = "/healthz?js-enabled-only=true"
    nats_probes = {"readinessProbe": _http_probe(healthz, mport, 5, 3),
                   "livenessProbe": _http_probe("/healthz", mport, 10, 3),
                   "startupProbe": _http_probe("/healthz", mport, 2, 60)}
    nats_ports = [("client", nport), ("monitor", mport)]
    return {
        "valkey.yaml": [_statefulset(valkey, ns, {"readinessProbe": tcp, "livenessProbe": tcp},
                                     [("valkey", vport)]),
                        _service("valkey", ns, "valkey", [("valkey", vport)])],
        "nats.yaml": [_statefulset(nats, ns, nats_probes, nats_ports),
                      _service("nats", ns, "nats", nats_ports)],
    }


def _deployment(spec: compose.ContainerSpec, stack: Stack, ns: str, image: str) -> list[dict[str, Any]]:
    c = stack[spec.name]
    port = c.port or 0
    env = {**spec.environment, **compose_secrets.service_env(spec.name)}
    lake = stack.first("lake")
    if lake is not None and lake.uri:  # an s3:// lake; the default is the pod's own /data/lake
        env[names.LAKE_URI] = lake.uri
    container = {
        "name": spec.name, "image": image, "command": spec.command,
        "ports": [{"name": "http", "containerPort": port}],
        "env": [{"name": k, "value": v} for k, v in env.items()],
        "readinessProbe": _http_probe(c.health_path, port, 5, 3),
        "livenessProbe": _http_probe(c.live_path, port, 10, 3),
        "startupProbe": _http_probe(c.live_path, port, 2, 60),
        "resources": _resources(spec.memory, c.nice),
        "volumeMounts": [{"name": "data", "mountPath": compose.DATA},
                         {"name": "credentials", "mountPath": SECRET_MOUNT, "readOnly": True}],
    }
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta(spec.name, ns, "service"),
        # one process per service, as `up` runs it: a rolling update would run two consumers
        "spec": {"replicas": 1, "strategy": {"type": "Recreate"},
                 "selector": {"matchLabels": {NAME: spec.name}},
                 "template": {"metadata": {"labels": _labels(spec.name, "service")},
                              "spec": {"containers": [container],
                                       "volumes": [{"name": "data", "emptyDir": {}},
                                                   _secret_volume(f"{spec.name}-credentials")]}}},
    }
    return [deployment, _service(spec.name, ns, "service", [("http", port)])]


def _secrets(stack: Stack, ns: str, creds_dir: Path,
             specs: dict[str, compose.ContainerSpec]) -> list[dict[str, Any]]:
    """The files `up` writes into a run directory (credentials.prepare), as Secrets."""
    creds, _ = credentials.prepare(creds_dir, stack)
    where = credentials.credentials_dir(creds_dir)
    nats_files = {compose_secrets.NATS_CONF: (where / "nats.conf").read_text(), **specs["nats"].files}
    out = [_secret("valkey-config", ns, "valkey",
                   {compose_secrets.VALKEY_CONF: (where / "valkey.conf").read_text()}),
           _secret("nats-config", ns, "nats", nats_files)]
    for s in stack.services:
        folder = credentials.service_secrets_dir(creds_dir, s.name)
        files = {p.name: p.read_text() for p in sorted(folder.iterdir()) if p.is_file()}
        out.append(_secret(f"{s.name}-credentials", ns, "service", files))
    operator = {"nats_password": creds.nats[credentials.ADMIN_USER]}
    out.append(_secret(TOPOLOGY_SECRET, ns, "topology", operator))
    out.append(_secret(BENCH_SECRET, ns, "bench", {"nats_password": creds.nats[credentials.BENCH_USER],
                                                   "operator_token": creds.operator_token}))
    return out


def _uses(name: str, stack: Stack) -> list[tuple[str, list[int]]]:
    """What service `name` reaches over the network, from the contract's TOPOLOGY."""
    needs = contract.TOPOLOGY[name]
    out: list[tuple[str, list[int]]] = []
    if needs.nats:
        out.append(("nats", [stack["nats"].port or 4222]))
    if needs.valkey:
        out.append(("valkey", [stack["valkey"].port or 6379]))
    for other in stack.services:  # the services answering what it asks (oms asks risk's check)
        if other.name != name and set(needs.requests) & set(contract.TOPOLOGY[other.name].serves):
            out.append((other.name, [other.port or 0]))
    return out


def _policy(name: str, ns: str, pod: dict[str, Any],
            rules: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": ns, "labels": {PART_OF: "trade-ops"}},
            "spec": {"podSelector": pod, "policyTypes": [k.capitalize() for k in rules], **rules}}


def _pods(*names_: str) -> list[dict[str, Any]]:
    return [{"podSelector": {"matchLabels": {NAME: n}}} for n in names_]


def _ports(ports: list[int]) -> list[dict[str, Any]]:
    return [{"protocol": "TCP", "port": p} for p in ports]


def _network_policies(stack: Stack, ns: str) -> list[dict[str, Any]]:
    operator = {"podSelector": {"matchLabels": {ROLE_LABEL: OPERATOR_ROLE}}}
    dns = {"to": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
           "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}
    out = [_policy("default-deny", ns, {}, {"ingress": [], "egress": []}),
           _policy("dns", ns, {}, {"egress": [dns]}),
           _policy("operator", ns, {"matchLabels": {ROLE_LABEL: OPERATOR_ROLE}},
                   {"egress": [{"to": [{"podSelector": {}}]}]})]
    clients: dict[str, list[str]] = {}
    ports: dict[str, list[int]] = {"nats": [stack["nats"].port or 4222],
                                   "valkey": [stack["valkey"].port or 6379]}
    for s in stack.services:
        ports[s.name] = [s.port or 0]
        uses = _uses(s.name, stack)
        for used, _ in uses:
            clients.setdefault(used, []).append(s.name)
        out.append(_policy(f"{s.name}-egress", ns, {"matchLabels": {NAME: s.name}},
                           {"egress": [{"to": _pods(used), "ports": _ports(p)} for used, p in uses]}))
    for target, port_list in ports.items():
        sources = [*_pods(*clients.get(target, [])), operator]
        rules = [{"from": sources, "ports": _ports(port_list)}]
        if target == "nats":  # its monitoring (users, subscriptions, streams) is the operator's alone
            rules.append({"from": [operator], "ports": _ports([stack["nats"].monitor_port
                                                                or compose.NATS_MONITOR_PORT])})
        out.append(_policy(f"{target}-ingress", ns, {"matchLabels": {NAME: target}}, {"ingress": rules}))
    return out


def _topology_job(ns: str, image: str, nats_port: int) -> dict[str, Any]:
    """The operator's streams and durable consumers (services/provision.py, as compose's
    one-shot runs it): services only bind to them. Retried until NATS answers."""
    env = {names.NATS_URL: f"nats://nats:{nats_port}", **compose_secrets.service_env(credentials.ADMIN_USER)}
    container = {"name": topology.COMPOSE_JOB, "image": image,
                 "command": topology.PROVISION_COMMAND,
                 "env": [{"name": k, "value": v} for k, v in env.items()],
                 "volumeMounts": [{"name": "credentials", "mountPath": SECRET_MOUNT, "readOnly": True}],
                 "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}}}
    labels = {**_labels(topology.COMPOSE_JOB, "topology"), ROLE_LABEL: OPERATOR_ROLE}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": _meta(topology.COMPOSE_JOB, ns, "topology"),
            "spec": {"backoffLimit": 20,
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"restartPolicy": "OnFailure", "containers": [container],
                                           "volumes": [_secret_volume(TOPOLOGY_SECRET)]}}}}


def _bench_job(ns: str, image: str, workers: int, nats_port: int) -> dict[str, Any]:
    secret = {"secretKeyRef": {"name": BENCH_SECRET, "key": "nats_password"}}
    token = {"secretKeyRef": {"name": BENCH_SECRET, "key": "operator_token"}}
    index = {"fieldRef": {"fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}}
    container = {
        "name": "worker", "image": image,
        "command": ["python", "-m", "trade_ops", "bench", "worker",
                    "--shard", f"$(JOB_COMPLETION_INDEX)/{workers}", "--join", f"nats://nats:{nats_port}"],
        "env": [{"name": "JOB_COMPLETION_INDEX", "valueFrom": index},
                {"name": names.NATS_USER, "value": credentials.BENCH_USER},
                {"name": names.setting_var("nats_password"), "valueFrom": secret},
                {"name": names.setting_var("operator_token"), "valueFrom": token}],
        "resources": {"requests": {"cpu": "500m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
    }
    labels = {**_labels("bench-workers", "bench"), ROLE_LABEL: OPERATOR_ROLE}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": _meta("bench-workers", ns, "bench"),
            # a worker that fails is named by the coordinator, never run again behind its back
            "spec": {"completionMode": "Indexed", "completions": workers, "parallelism": workers,
                     "backoffLimit": 0, "ttlSecondsAfterFinished": 3600,
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"restartPolicy": "Never", "containers": [container]}}}}


def cluster_stack(stack: Stack, ns: str) -> str:
    """A stack file naming each component by its Service's DNS name in the namespace."""
    lines = [f"# The stack in Kubernetes namespace {ns}: trade-ops doctor --stack stack.toml, and bench",
             "# with --allow-remote (its targets are no longer loopback), from a pod in the cluster.", ""]
    for kind in ("valkey", "nats"):
        lines += [f"[infra.{kind}]", f'host = "{kind}.{ns}.svc"', ""]
    # its monitoring, which NetworkPolicy opens to the operator's pods alone
    lines.insert(-1, f"monitor_port = {stack['nats'].monitor_port or compose.NATS_MONITOR_PORT}")
    for s in stack.services:
        lines += [f"[services.{s.name}]", f'url = "http://{s.name}.{ns}.svc:{s.port}"', ""]
    return "\n".join(lines)


def render(stack: Stack, namespace: str = DEFAULT_NAMESPACE, *, creds_dir: Path,
           image: str = compose.SERVICE_IMAGE, workers: int = 2) -> Manifests:
    """Every manifest of the stack in `namespace`; the credentials are kept in `creds_dir`
    (created there on the first render, the same ones after)."""
    ns = check_namespace(namespace)
    _check_services(stack)
    if not 1 <= workers <= 1000:
        raise UsageError(f"--workers must be between 1 and 1000, not {workers}")
    base = stack.with_offset(0)
    # NATS's monitoring on the pod's address (kubelet's probes; NetworkPolicy: the operator's pods)
    specs = {s.name: s for s in compose.container_specs(base, monitor_host="0.0.0.0")}
    m = Manifests(ns, stack_toml=cluster_stack(base, ns))
    m.files["namespace.yaml"] = [{"apiVersion": "v1", "kind": "Namespace",
                                  "metadata": {"name": ns, "labels": {PART_OF: "trade-ops"}}}]
    m.files["secrets.yaml"] = _secrets(base, ns, creds_dir, specs)
    m.files.update(_infra(specs, base, ns))
    for s in base.services:
        m.files[f"{s.name}.yaml"] = _deployment(specs[s.name], base, ns, image)
    m.files["network-policies.yaml"] = _network_policies(base, ns)
    m.files["topology.yaml"] = [_topology_job(ns, image, base["nats"].port or 4222)]
    m.files["bench-workers.yaml"] = [_bench_job(ns, image, workers, base["nats"].port or 4222)]
    m.files["stack.yaml"] = [{"apiVersion": "v1", "kind": "ConfigMap",
                              "metadata": _meta("trade-ops-stack", ns, "stack"),
                              "data": {"stack.toml": m.stack_toml}}]
    return m


def write(m: Manifests, out: Path) -> list[Path]:
    """The manifests as files in `out` (secrets.yaml readable by its owner only)."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, docs in m.files.items():
        path = out / name
        text = yaml.safe_dump_all(docs, sort_keys=False, width=1000)
        if name in m.secret_files:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(text)
            path.chmod(0o600)
        else:
            path.write_text(text)
        written.append(path)
    (out / "stack.toml").write_text(m.stack_toml)
    return [*written, out / "stack.toml"]
