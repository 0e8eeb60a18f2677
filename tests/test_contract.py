"""The bus contract: no I/O imports, every payload round-trips, every subject and stream
name is spelled only there, and the topology names every service of the stack."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from services import contract, env
from trade_ops.stack import load_stack

pytestmark = pytest.mark.process

ROOT = Path(__file__).resolve().parents[1]


def test_importing_the_contract_pulls_in_no_io_library() -> None:
    code = ("import sys, services.contract; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'nats', 'redis', 'httpx', 'fastapi', 'starlette', 'pydantic', 'orjson'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=ROOT, timeout=30)
    assert out.stdout.strip() == "[]"


SAMPLES: list[msgspec.Struct] = [
    contract.Tick(id="BTCUSDT-1", ts=1.0, symbol="BTCUSDT", seq=1, bid=1.0, ask=2.0, last=1.5),
    contract.Bar(id="X-1m-0", ts=1.0, symbol="X", interval="1m", start=0, end=60_000,
                 open=1, high=2, low=0.5, close=1.5, volume=3, trades=2),
    contract.AltEvent(id="a", ts=1.0, symbol="X", headline="h", sentiment=0.5, source="s"),
    contract.OrderNew(id="o1", ts=1.0, order=contract.Order(order_id="o1", symbol="X", side="buy",
                                                            quantity=1, price=2)),
    contract.Cancel(id="cancel-o1", ts=1.0, order_id="o1", account="a", symbol="X"),
    contract.VenueNew(id="new-o1", order=contract.Order(order_id="o1", symbol="X", side="sell",
                                                        quantity=1, order_type="MARKET")),
    contract.VenueCancel(id="cancel-o1", order=contract.OrderRef(order_id="o1")),
    contract.Fill(id="o1-1", fill_id="o1-1", order_id="o1", symbol="X", side="buy", quantity=1,
                  price=2, final=True),
    contract.Cancelled(id="cancelled-o1", order_id="o1", cancelled_quantity=1, reason="IOC"),
    contract.PositionSnapshot(id="a:X:7", account="a", symbol="X", quantity=1, avg_price=2,
                              realized=0, seq=7),
    contract.RiskCheckRequest(symbol="X", side="buy", quantity=1),
    contract.RiskCheckReply(approved=False, risk_level="HIGH", reason="limit"),
]


@pytest.mark.parametrize("payload", SAMPLES, ids=lambda p: type(p).__name__)
def test_every_payload_round_trips(payload: msgspec.Struct) -> None:
    kind = type(payload)
    if kind in (contract.VenueNew, contract.VenueCancel):
        assert contract.decode_venue_order(contract.encode(payload)) == payload
    else:
        assert contract.decode(contract.encode(payload), kind) == payload


def test_decoding_checks_types_and_ignores_unknown_fields() -> None:
    with pytest.raises(msgspec.ValidationError, match="side"):
        contract.decode(b'{"id":"f","fill_id":"f","order_id":"o","symbol":"X","side":"hold",'
                        b'"quantity":1,"price":1}', contract.Fill)
    with pytest.raises(msgspec.ValidationError, match="price"):
        contract.decode(b'{"id":"f","fill_id":"f","order_id":"o","symbol":"X","side":"buy",'
                        b'"quantity":1}', contract.Fill)
    tick = contract.decode(b'{"id":"X-1","symbol":"X","bid":1,"ask":2,"new_field":3}', contract.Tick)
    assert tick.bid == 1.0 and tick.ask == 2.0
    assert contract.encode(contract.VenueNew(id="n", order=contract.Order(
        order_id="o", symbol="X", side="buy", quantity=1))).startswith(b'{"action":"new"')


def test_subject_builders_keep_a_name_one_token() -> None:
    assert contract.tick_subject("BTCUSDT") == "market.tick.BTCUSDT"
    assert contract.fill_subject("BRK.B") == "exec.fill.BRK%2EB"
    assert contract.position_subject("desk.1", "X") == "positions.desk%2E1.X"
    assert contract.bar_subject("1m", "X") == "market.bar.1m.X"
    for subject in (contract.tick_subject("A.B*>"), contract.alt_subject("A.B")):
        assert len(subject.split(".")) == 3 and "*" not in subject and ">" not in subject


def test_every_subject_has_one_family_and_one_stream() -> None:
    cases = {contract.tick_subject("X"): "tick", contract.bar_subject("5m", "X"): "bar",
             contract.alt_subject("X"): "alt", contract.ORDERS_NEW: "order_new",
             contract.ORDERS_CANCEL: "order_cancel", contract.VENUE_ORDER: "venue_order",
             contract.fill_subject("X"): "fill", contract.EXEC_CANCELLED: "cancelled",
             contract.position_subject("a", "X"): "position", contract.RISK_CHECK: "risk_check"}
    for subject, name in cases.items():
        family = contract.family_of(subject)
        assert family.name == name
        if family.stream is not None:
            assert contract.stream_for(subject) == family.stream


def test_topology_names_every_service_of_the_stack_and_only_known_families() -> None:
    stack = load_stack()
    assert set(contract.TOPOLOGY) == {c.name for c in stack.services}
    for name, needs in contract.TOPOLOGY.items():
        for family in (*needs.publishes, *needs.consumes, *needs.requests, *needs.serves):
            assert family in contract.FAMILIES, (name, family)
        assert set(needs.tables) <= set(contract.TABLES)
    publishers = {f for n in contract.TOPOLOGY.values() for f in (*n.publishes, *n.requests)}
    consumers = {f for n in contract.TOPOLOGY.values() for f in (*n.consumes, *n.serves)}
    assert publishers == set(contract.FAMILIES), "a family nobody publishes"
    assert consumers <= publishers, "a family consumed that nobody publishes"


# Subject and stream names as string literals: only services/contract.py may spell them.
_LITERAL = re.compile(r"""["'](market\.(tick|bar)|alt\.|orders\.|venue\.|exec\.|positions\.|risk\.check"""
                      r"""|(TICKS|BARS|ALT|ORDERS|VENUE|EXEC|POSITIONS)["'])""")


def test_no_subject_or_stream_name_is_spelled_outside_the_contract() -> None:
    found = []
    for package in ("services", "trade_ops"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if path == ROOT / "services" / "contract.py":
                continue
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if _LITERAL.search(line) and not line.startswith("__all__"):
                    found.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert found == []


def test_nothing_under_services_imports_trade_ops_or_tests() -> None:
    found = [f"{p.relative_to(ROOT)}:{n}" for p in sorted((ROOT / "services").rglob("*.py"))
             for n, line in enumerate(p.read_text().splitlines(), 1)
             if re.match(r"\s*(from|import) (trade_ops|tests)\b", line)]
    assert found == []


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def test_environment_variable_names_are_spelled_only_in_services_env() -> None:
    """Code (a string, an f-string's text, a message) names a TRADE_OPS_ variable through
    services.env; docstrings and comments may name them for the reader."""
    found = []
    for path in sorted([*(ROOT / "services").rglob("*.py"), *(ROOT / "trade_ops").rglob("*.py")]):
        if path == ROOT / "services" / "env.py":
            continue
        tree = ast.parse(path.read_text())
        skip = _docstrings(tree)
        found += [f"{path.relative_to(ROOT)}:{node.lineno}: {node.value[:60]!r}" for node in ast.walk(tree)
                  if isinstance(node, ast.Constant) and isinstance(node.value, str)
                  and env.PREFIX in node.value and id(node) not in skip]
    assert found == []
