"""bench reads the OMS's own verdict of each order (tests/apps/foreign_oms.py, real processes).

The original OMS answered HTTP 200 `RISK_REJECTED` and bench counted it ok: `100 ok, 0
rejections, pass`. A rejection is what the status code or the body says; rejections are
counted and sampled apart from errors; all rejected fails with the OMS's reason;
`rejections<1%` gates; `[contracts.order]` of `--stack` is honoured; a connection the server
closed after its answer is reopened, not counted as an error.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.apps.foreign_oms import start_foreign_oms
from tests.apps.hostile import hostile
from tests.helpers import Proc, cli_json
from trade_ops.cli import app

pytestmark = [pytest.mark.process, pytest.mark.usefixtures("tmp_cwd")]

runner = CliRunner()


@pytest.fixture
def oms(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Proc]:
    proc = start_foreign_oms(tmp_path, *request.param)
    try:
        yield proc
    finally:
        proc.stop()


def bench(*args: str) -> tuple[int, dict[str, Any]]:
    return cli_json("bench", *args, "--json")


@pytest.mark.parametrize("oms", [("reject",)], indirect=True)
def test_every_order_answered_200_risk_rejected_fails_with_the_oms_reason(oms: Proc) -> None:
    code, doc = bench("oms", "--url", oms.url, "-n", "30", "-c", "1", "--order", "price=45000")
    assert code == 1 and doc["status"] == "fail"
    assert doc["rejections"] == 30 and doc["ok"] == 0 and doc["errors"] == 0
    assert doc["failures"][0].startswith("every order was rejected: ")
    assert "no responders" in doc["failures"][0]
    assert doc["rejection_samples"][0] == "RISK_REJECTED: no responders available for request"  # its words
    assert doc["error_samples"] == {}


@pytest.mark.parametrize("oms", [("reject-half",)], indirect=True)
def test_half_rejected_are_counted_apart_and_gated_by_a_rejection_slo(oms: Proc) -> None:
    code, doc = bench("oms", "--url", oms.url, "-n", "40", "-c", "1", "--order", "price=45000")
    assert doc["rejections"] == 20 and doc["ok"] == 20 and doc["errors"] == 0
    assert code == 0  # rejections are the OMS's verdict, not errors: only a rejection SLO gates them
    code, doc = bench("oms", "--url", oms.url, "-n", "40", "-c", "1", "--order", "price=45000",
                      "--slo", "rejections<1%")
    assert code == 1 and doc["rejections"] == 20
    assert doc["failures"] == ["SLO rejections<1% breached (rejections=50% (20))"]


@pytest.mark.parametrize("oms", [("untyped", "reject-half")], indirect=True)
def test_the_stack_file_order_contract_is_honoured(oms: Proc, tmp_path: Path) -> None:
    """Its OpenAPI says nothing of the body: without the stack file every order is a 400."""
    code, doc = bench("oms", "--url", oms.url, "-n", "10", "-c", "1", "--order", "price=45000")
    assert code == 1 and doc["errors_by_kind"] == {"http_400": 10}
    stack = tmp_path / "stack.toml"
    stack.write_text(textwrap.dedent("""\
        [contracts.order]
        fields = { order_type = "type", account = "account_id", time_in_force = "" }
        values = { side = { buy = "BUY", sell = "SELL" } }
        defaults = { price = 45000 }
        rejected = ["RISK_REJECTED"]
    """))
    code, doc = bench("oms", "--url", oms.url, "--stack", str(stack), "-n", "10", "-c", "1")
    assert doc["errors"] == 0 and doc["ok"] == 5 and doc["rejections"] == 5, doc["error_samples"]
    assert "[contracts.order] in the stack file" in doc["contract"]


def test_a_connection_closed_after_its_answer_is_reopened_not_an_error(tmp_path: Path) -> None:
    """A risk that answers 500 and closes (no `Connection: close`): half its errors were
    "connection reset by peer", the next request on the closed connection."""
    with hostile(tmp_path, "closer") as url:
        code, doc = bench("risk", "--url", url, "-n", "60", "-c", "1")
    assert code == 1 and doc["errors_by_kind"] == {"http_500": 60}, doc["errors_by_kind"]
    assert doc["connections"] >= 60  # one per answer: each was reopened


@pytest.mark.parametrize("oms", [("strategy",)], indirect=True)
def test_a_required_field_of_theirs_is_asked_for_and_sent_as_given(oms: Proc) -> None:
    result = runner.invoke(app, ["bench", "oms", "--url", oms.url, "-n", "5", "--order", "price=45000"])
    assert result.exit_code == 2 and "requires strategy_id" in result.stderr
    assert "--order strategy_id=VALUE" in result.stderr
    code, doc = bench("oms", "--url", oms.url, "-n", "5", "-c", "1", "--order", "price=45000",
                      "--order", "strategy_id=bench")
    assert code == 0 and doc["ok"] == 5, doc["error_samples"]
