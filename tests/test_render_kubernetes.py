"""`trade-ops render kubernetes`: manifests derived from the stack definition, valid for a
current Kubernetes (kubernetes-validate --strict, the schemas of the real API), following
the stack file, carrying the credentials `up` generates, and refusing bad input in one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from trade_ops import credentials
from trade_ops.cli import app
from trade_ops.errors import ExitCode

pytestmark = pytest.mark.process

runner = CliRunner()
KUBERNETES = "1.35.0"  # a current release; kubernetes-validate carries its API schemas


def _render(tmp_path: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["render", "kubernetes", "--out", str(tmp_path / "k8s"), *args])
    return result.exit_code, result.output


def _docs(folder: Path) -> dict[tuple[str, str], dict[str, Any]]:
    out = {}
    for path in folder.glob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            out[(doc["kind"], doc["metadata"]["name"])] = doc
    return out


def _container(doc: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = doc["spec"]["template"]["spec"]["containers"][0]
    return container


def _egress_targets(policy: dict[str, Any]) -> dict[str, list[int]]:
    return {peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"]: [p["port"] for p in rule["ports"]]
            for rule in policy["spec"]["egress"] for peer in rule["to"]}


def test_every_manifest_is_valid_for_a_current_kubernetes(tmp_path: Path) -> None:
    code, output = _render(tmp_path, "--namespace", "desk-a", "--workers", "3")
    assert code == 0, output
    files = sorted((tmp_path / "k8s").glob("*.yaml"))
    assert len(files) >= 20
    checked = subprocess.run([sys.executable, "-m", "kubernetes_validate", "--strict", "-k", KUBERNETES,
                              *map(str, files)], capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "failed" not in checked.stdout and checked.stdout.count("passed") >= 60, checked.stdout


def test_manifests_carry_the_stack_credentials_and_topology(tmp_path: Path) -> None:
    assert _render(tmp_path)[0] == 0
    docs = _docs(tmp_path / "k8s")
    assert (tmp_path / "k8s" / "secrets.yaml").stat().st_mode & 0o077 == 0  # the owner's alone
    # the Secrets are the files `up` writes: the same users, passwords and permissions
    creds = credentials.load(tmp_path / "k8s")
    assert creds is not None
    nats_conf = docs[("Secret", "nats-config")]["stringData"]["nats_conf"]
    assert all(f'"password": "{p}"' in nats_conf for p in creds.nats.values())
    assert '"user": "trade-ops-bench"' in nats_conf and "trade-ops.bench.>" in nats_conf
    oms_files = docs[("Secret", "oms-credentials")]["stringData"]
    assert oms_files["nats_password"] == creds.nats["oms"]
    assert oms_files["operator_token"] == creds.operator_token
    assert "operator_token" not in docs[("Secret", "gateway-credentials")]["stringData"]
    # the streams and durables are the operator's: a Job makes them (services only bind)
    job = docs[("Job", "topology")]["spec"]["template"]
    assert job["spec"]["containers"][0]["command"] == ["python", "-m", "services.provision"]
    assert job["metadata"]["labels"]["trade-ops/role"] == "operator"  # it reaches nats
    operator = docs[("Secret", "topology-credentials")]["stringData"]
    assert operator == {"nats_password": creds.nats["trade-ops"]}
    # a service reaches only what it uses: oms asks risk and writes valkey; gateway publishes only
    assert _egress_targets(docs[("NetworkPolicy", "oms-egress")]) == {"nats": [4222], "valkey": [6379],
                                                                       "risk": [8103]}
    assert _egress_targets(docs[("NetworkPolicy", "gateway-egress")]) == {"nats": [4222]}
    # NATS monitoring (users, subscriptions, streams) is reached by the operator's pods alone
    nats_in = docs[("NetworkPolicy", "nats-ingress")]["spec"]["ingress"]
    monitor = [rule["from"] for rule in nats_in if {"protocol": "TCP", "port": 8222} in rule["ports"]]
    assert monitor == [[{"podSelector": {"matchLabels": {"trade-ops/role": "operator"}}}]], nats_in
    # it listens on the pod (kubelet's probes), and doctor in an operator pod is told where
    server_conf = docs[("Secret", "nats-config")]["stringData"]["nats_server_conf"]
    assert 'http: "0.0.0.0:8222"' in server_conf and 'include "nats_conf"' in server_conf
    assert "monitor_port = 8222" in (tmp_path / "k8s" / "stack.toml").read_text()
    risk_in = docs[("NetworkPolicy", "risk-ingress")]["spec"]["ingress"][0]["from"]
    assert [p["podSelector"]["matchLabels"] for p in risk_in] == [{"app.kubernetes.io/name": "oms"},
                                                                 {"trade-ops/role": "operator"}]
    assert docs[("NetworkPolicy", "default-deny")]["spec"] == {
        "podSelector": {}, "policyTypes": ["Ingress", "Egress"], "ingress": [], "egress": []}
    # volumes for the state, probes from the health paths, the workers' shard from the index
    for name in ("valkey", "nats"):
        assert docs[("StatefulSet", name)]["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    oms = _container(docs[("Deployment", "oms")])
    assert oms["readinessProbe"]["httpGet"] == {"path": "/health", "port": 8099}
    assert oms["livenessProbe"]["httpGet"] == {"path": "/livez", "port": 8099}
    job = docs[("Job", "bench-workers")]
    assert job["spec"]["completionMode"] == "Indexed" and job["spec"]["completions"] == 2
    assert "$(JOB_COMPLETION_INDEX)/2" in _container(job)["command"]


def test_manifests_follow_the_stack_file(tmp_path: Path) -> None:
    stack = tmp_path / "stack.toml"
    stack.write_text('[services.oms]\nport = 9099\n\n[services.risk]\nhealth_path = "/ready"\nnice = 10\n')
    code, output = _render(tmp_path, "--stack", str(stack), "--namespace", "desk-b")
    assert code == 0, output
    docs = _docs(tmp_path / "k8s")
    assert docs[("Service", "oms")]["spec"]["ports"][0]["port"] == 9099
    assert docs[("Service", "oms")]["metadata"]["namespace"] == "desk-b"
    assert docs[("NetworkPolicy", "oms-ingress")]["spec"]["ingress"][0]["ports"] == [{"protocol": "TCP",
                                                                                     "port": 9099}]
    risk = _container(docs[("Deployment", "risk")])
    assert risk["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert risk["resources"]["requests"]["cpu"] == "50m"  # nice 10: it yields, as on one host
    assert 'url = "http://oms.desk-b.svc:9099"' in (tmp_path / "k8s" / "stack.toml").read_text()
    # the NATS server's environment is the stack file's (the builtin's GOMAXPROCS)
    assert {"name": "GOMAXPROCS", "value": "1"} in _container(docs[("StatefulSet", "nats")])["env"]


@pytest.mark.parametrize(("args", "said"), [
    (["--namespace", "Desk_A"], "is not a DNS label"),
    (["--namespace", "-a"], "is not a DNS label"),
    (["--stack", "{unknown}"], "is not one of trade-ops' services"),
])
def test_bad_input_is_exit_2_with_one_line(tmp_path: Path, args: list[str], said: str) -> None:
    unknown = tmp_path / "unknown.toml"
    unknown.write_text('[services.quotes-x]\nport = 9100\napp = "quotes_x.app:app"\n')
    code, output = _render(tmp_path, *[a.replace("{unknown}", str(unknown)) for a in args])
    assert code == ExitCode.USAGE and said in output, output
    lines = output.strip().splitlines()  # the error, then the CLI's usual pointer to --help
    assert lines[0].startswith("error: "), output
    assert lines[1:] == ["see `trade-ops render kubernetes --help`"], output
    assert not (tmp_path / "k8s").exists()
