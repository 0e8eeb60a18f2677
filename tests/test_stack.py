"""The stack definition: loading, merging a user file, offsets, the dependency graph."""

from __future__ import annotations

from pathlib import Path

import pytest

from trade_ops.errors import StackFileError, UsageError
from trade_ops.stack import load_stack

pytestmark = pytest.mark.unit

SERVICES = {"gateway", "normalizer", "sink-ticks", "sink-alt", "risk", "oms", "exeq",
            "live-gateway", "ptrc", "pnl", "hot-cache", "execution-quality", "feast-pipeline",
            "event-writer"}


def test_builtin_stack_has_the_14_services_and_infra() -> None:
    stack = load_stack()
    assert {s.name for s in stack.services} == SERVICES
    assert {c.name for c in stack.infra} == {"valkey", "nats", "lake"}
    assert stack["pnl"].port == 8100  # the original's pnl served 8100 (its healthcheck probed 8096)


def test_offset_shifts_every_port() -> None:
    stack = load_stack(offset=3000)
    assert stack["oms"].port == 8099 + 3000
    assert stack["nats"].port == 4222 + 3000
    assert stack["nats"].monitor_port is None  # trade-ops' NATS opens no HTTP monitoring port
    assert load_stack(offset=0).with_offset(3000)["nats"].monitor_port is None
    assert stack.valkey_url() == "redis://127.0.0.1:9379/0"
    assert stack.with_offset(0)["oms"].port == 8099


def test_start_order_puts_dependencies_first() -> None:
    order = load_stack().start_order()
    assert order.index("valkey") < order.index("risk") < order.index("oms")
    assert order.index("gateway") < order.index("normalizer") < order.index("feast-pipeline")


def test_closure_adds_what_a_service_needs() -> None:
    order = load_stack().closure(["oms"])
    # risk prices MARKET orders at gateway's quotes (and serves on without ptrc's positions)
    assert set(order) == {"nats", "valkey", "risk", "oms", "gateway"}
    assert order.index("risk") < order.index("oms")


def test_depends_on_is_derived_from_what_services_declare(tmp_path: Path) -> None:
    stack = load_stack()
    assert "valkey" not in stack["hot-cache"].depends_on  # it never opens valkey
    assert "gateway" in stack["risk"].depends_on and "gateway" in stack["execution-quality"].depends_on
    assert stack["exeq"].depends_on[-1] == "live-gateway"  # its instructions need a venue
    assert set(stack["pnl"].depends_on) == {"nats", "lake", "gateway", "ptrc"}
    f = tmp_path / "stack.toml"
    f.write_text('[services.pnl]\ndepends_on = ["nats"]\n')  # a user file still decides
    assert load_stack(f)["pnl"].depends_on == ("nats",)


def test_dependents_of_valkey_are_blocked_services() -> None:
    blocked = set(load_stack().dependents("valkey"))
    assert {"oms", "risk", "pnl", "feast-pipeline"} <= blocked
    assert "exeq" in blocked  # through live-gateway, whose resting orders live in valkey
    assert "sink-alt" not in blocked and "event-writer" not in blocked


def test_user_file_overrides_one_port(tmp_path: Path) -> None:
    f = tmp_path / "stack.toml"
    f.write_text('[services.pnl]\nport = 8096\n')
    stack = load_stack(f)
    assert stack["pnl"].port == 8096
    assert stack["oms"].port == 8099


@pytest.mark.parametrize("text, message", [
    ("[services.oms\n", "not valid TOML"),
    ('[services.oms]\ndepends_on = ["nowhere"]\n', "unknown component"),
    ('[services.risk]\ndepends_on = ["oms"]\n', "cycle"),
    ('[services.oms]\nport = "high"\n', "malformed"),
])
def test_bad_stack_files_are_clear_errors(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "stack.toml"
    f.write_text(text)
    with pytest.raises(StackFileError, match=message):
        load_stack(f)


def test_missing_stack_file(tmp_path: Path) -> None:
    with pytest.raises(StackFileError, match="does not exist"):
        load_stack(tmp_path / "nope.toml")


def test_unknown_service_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown component 'omz'"):
        load_stack()["omz"]


def test_service_env_tells_each_service_where_everything_is(tmp_path: Path) -> None:
    env = load_stack(offset=10).service_env("oms", tmp_path)
    assert env["TRADE_OPS_PORT"] == "8109"
    assert env["TRADE_OPS_URL_RISK"] == "http://127.0.0.1:8113"
    assert env["TRADE_OPS_NATS_URL"] == "nats://127.0.0.1:4232"
    assert env["TRADE_OPS_LAKE_URI"] == str((tmp_path / "lake").resolve())


MALFORMED = {
    "services-number": "services = 5\n",
    "service-number": "[services]\noms = 5\n",
    "env-number": "[services.oms]\nenv = 5\n",
    "infra-list": "infra = []\n",
    "defaults-string": 'defaults = "x"\n',
    "enabled-no": '[services.oms]\nenabled = "no"\n',
    "depends-string": '[services.oms]\ndepends_on = "risk"\n',
    "port-bool": "[services.oms]\nport = true\n",
    "infra-entry-list": "[infra]\nvalkey = [1]\n",
    "not-utf8": "\xff\xfe = 1\n",
}


@pytest.mark.parametrize("name", MALFORMED)
def test_a_malformed_stack_file_is_a_stack_file_error(tmp_path: Path, name: str) -> None:
    """Each of these gave a traceback (or, `enabled = "no"`, counted as enabled)."""
    f = tmp_path / "stack.toml"
    f.write_bytes(MALFORMED[name].encode("latin-1"))
    with pytest.raises(StackFileError) as caught:
        load_stack(f)
    assert "\n" not in caught.value.message


def test_an_endless_stack_file_is_read_no_further_than_a_bound() -> None:
    """`--stack /dev/zero` was a MemoryError."""
    with pytest.raises(StackFileError, match="larger than"):
        load_stack("/dev/zero")
