"""`bench oms --url` against an OMS whose order fields differ (the legacy fixture: `type`
for order_type, upper-case sides, `price` required, unknown fields refused): the order is
written in the contract its OpenAPI schema states, the same contract code doctor uses."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest
from typer.testing import CliRunner

from tests.helpers import Proc
from tests.legacy_stack import start_legacy, stop_all
from trade_ops.cli import app

pytestmark = [pytest.mark.process, pytest.mark.usefixtures("tmp_cwd")]

runner = CliRunner()


@pytest.fixture(scope="module")
def legacy_oms(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    procs = start_legacy(tmp_path_factory.mktemp("legacy"), roles=("oms",))
    try:
        yield procs["oms"]
    finally:
        stop_all(procs)


def test_orders_follow_the_foreign_oms_schema(legacy_oms: Proc) -> None:
    args = ["bench", "oms", "--url", legacy_oms.url, "-n", "40", "--order", "price=50000", "--json"]
    result = runner.invoke(app, args)
    doc = orjson.loads(result.stdout)
    assert result.exit_code == 0, (doc.get("error_samples"), result.stderr)
    assert doc["ok"] == 40 and doc["errors"] == 0
    assert "OpenAPI schema" in result.stderr and "order_type->type" in result.stderr


def test_a_required_price_is_asked_for_with_the_flag_that_gives_it(legacy_oms: Proc) -> None:
    result = runner.invoke(app, ["bench", "oms", "--url", legacy_oms.url, "-n", "5"])
    assert result.exit_code == 2
    assert "requires a price" in result.stderr and "--order price=" in result.stderr


def test_without_the_contract_every_order_is_an_error_and_says_why(legacy_oms: Proc) -> None:
    """What the issue saw against a foreign OMS: now a FAIL with the OMS's own answer."""
    result = runner.invoke(app, ["bench", "http", "--url", legacy_oms.url + "/orders", "-n", "20",
                                 "--body", '{"symbol":"BTCUSDT","side":"buy","quantity":1}', "--json"])
    doc = orjson.loads(result.stdout)
    assert result.exit_code == 1 and doc["errors_by_kind"] == {"http_400": 20}
    assert "Order validation failed" in doc["error_samples"]["http_400"][0]
