"""Risk counts what is working: the position, every accepted order not yet filled or
cancelled, and every order in flight (issue 26). The unit tests drive the exposure book;
the process tests send orders to a real OMS with a real risk: the shipped limits
(BTCUSDT: max_position 10), and NOTIONAL_SYMBOL with max_exposure_notional 120,000."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import msgspec
import pytest

from services import contract
from services.risk.exposure import Exposure
from services.risk.limits import DEFAULT_FILE
from tests.bus_helpers import get_json_until, infra_env, publish
from tests.helpers import Proc
from tests.orderpath import start, tick_event

pytestmark = pytest.mark.process

# A symbol whose position limit is far away, so the notional one is what binds.
NOTIONAL_SYMBOL, MAX_EXPOSURE_NOTIONAL = "ADAUSDT", 120_000
NOTIONAL_BID, NOTIONAL_ASK = 2_999.0, 3_001.0


def test_a_fill_counts_once_whether_the_position_has_it_yet_or_not() -> None:
    book = Exposure()
    book.reserve("o1", "a", "X", "buy", 5, price=10)
    assert (book.of("a", "X").buys, book.of("a", "X").buy_notional, book.of("a", "X").orders) == (5, 50, 1)
    book.fill(_fill({"order_id": "o1", "fill_id": "o1-1", "account": "a", "symbol": "X", "side": "buy",
               "quantity": 2}), seq=7)
    t = book.of("a", "X")
    assert (t.buys, t.buy_notional, t.pending_fills, t.orders) == (3, 30, 2, 1)  # not in the position yet
    book.fill(_fill({"order_id": "o1", "fill_id": "o1-1", "account": "a", "symbol": "X", "side": "buy",
               "quantity": 2}), seq=7)  # redelivered
    assert book.of("a", "X").buys == 3
    book.position("a", "X", seq=7)  # ptrc's snapshot now includes it
    assert book.of("a", "X").pending_fills == 0
    book.release("o1")  # the rest cancelled
    assert (book.of("a", "X").buys, book.of("a", "X").buy_notional, book.of("a", "X").orders) == (0, 0, 0)
    book.confirm(contract.Order(order_id="o1", account="a", symbol="X", side="buy", quantity=5), 10)
    assert book.of("a", "X").orders == 0  # its orders.new read late: done already


def test_an_order_risk_never_checked_counts_at_the_price_it_is_given() -> None:
    book = Exposure()
    book.confirm(contract.Order(order_id="o2", account="a", symbol="X", side="sell", quantity=4,
                                order_type="MARKET"), 12.5)
    assert (book.of("a", "X").sells, book.of("a", "X").sell_notional) == (4, 50)


def test_a_reservation_never_confirmed_is_released() -> None:
    book = Exposure(confirm_within_s=0.0)
    book.reserve("o1", "a", "X", "sell", 5, price=10)
    # its OMS never published it: it cannot trade
    assert (book.of("a", "X").sells, book.of("a", "X").sell_notional) == (0, 0)


@pytest.fixture(scope="module")
def services(valkey_server: Proc, nats_server: Proc, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[tuple[httpx.Client, str]]:
    """The OMS's client and its risk's URL."""
    publish(nats_server.url, [tick_event("BTCUSDT", 50_000, 50_010),
                              tick_event(NOTIONAL_SYMBOL, NOTIONAL_BID, NOTIONAL_ASK)])
    workdir = tmp_path_factory.mktemp("exposure")
    limits = workdir / "limits.toml"  # the shipped limits, and one symbol's notional limit
    limits.write_text(DEFAULT_FILE.read_text() + f"\n[{NOTIONAL_SYMBOL}]\n"
                      f"max_exposure_notional = {MAX_EXPOSURE_NOTIONAL}\n")
    env = infra_env(valkey_server, nats_server, log_level="warning", limits_file=str(limits))
    risk, _ = start("risk", workdir, env)
    oms, client = start("oms", workdir, {**env, "TRADE_OPS_URL_RISK": risk.url})
    try:
        yield client, risk.url
    finally:
        oms.stop()
        risk.stop()


@pytest.fixture
def oms(services: tuple[httpx.Client, str]) -> httpx.Client:
    return services[0]


@pytest.fixture
def risk_url(services: tuple[httpx.Client, str]) -> str:
    return services[1]


def _buy(client: httpx.Client, account: str) -> httpx.Response:
    # GTC LIMIT far below the market: it rests, working, and nothing fills it here.
    return client.post("/orders", json={"account": account, "symbol": "BTCUSDT", "side": "buy",
                                        "quantity": 5, "order_type": "LIMIT", "price": 40_000,
                                        "time_in_force": "GTC"}, headers={"X-Account": account})


def test_three_sequential_gtc_buys_of_5_against_max_position_10(oms: httpx.Client) -> None:
    """All three were accepted: the position reached 15 BTC against max_position 10."""
    account = f"exp-{uuid.uuid4().hex[:6]}"
    codes = [_buy(oms, account).status_code for _ in range(3)]
    assert codes == [201, 201, 422]
    third = _buy(oms, account).json()
    assert third["result"] == "rejected" and "max position 10" in third["detail"], third
    assert "working buys 10" in third["detail"]


def test_twenty_concurrent_buys_of_5_at_most_two_accepted(oms: httpx.Client) -> None:
    """Twenty concurrent 5 BTC orders were all accepted."""
    account = f"exp-{uuid.uuid4().hex[:6]}"
    with ThreadPoolExecutor(20) as pool:
        codes = list(pool.map(lambda _: _buy(oms, account).status_code, range(20)))
    assert codes.count(201) == 2 and codes.count(422) == 18, codes


def test_a_cancel_releases_what_the_order_held(oms: httpx.Client, risk_url: str, nats_server: Proc) -> None:
    account = f"exp-{uuid.uuid4().hex[:6]}"
    first, second = _buy(oms, account).json(), _buy(oms, account).json()
    assert _buy(oms, account).status_code == 422
    publish(nats_server.url, [("exec.cancelled", {
        "id": f"cancelled-{first['order_id']}", "order_id": first["order_id"], "account": account,
        "symbol": "BTCUSDT", "cancelled_quantity": 5, "reason": "cancelled on request"})])
    get_json_until(f"{risk_url}/working", lambda d: d["working"][0]["buys"] == 5,
                   params={"account": account})
    assert second["status"] == "ACCEPTED"
    assert _buy(oms, account).status_code == 201


def _order(client: httpx.Client, account: str, quantity: float, price: float | None = None,
           side: str = "buy") -> httpx.Response:
    """A GTC LIMIT order at `price` (below the market: it rests), or a MARKET one."""
    body = {"account": account, "symbol": NOTIONAL_SYMBOL, "side": side, "quantity": quantity,
            "time_in_force": "GTC", **({"order_type": "LIMIT", "price": price} if price is not None
                                      else {"order_type": "MARKET"})}
    return client.post("/orders", json=body, headers={"X-Account": account})


def test_sequential_buys_against_the_exposure_notional(oms: httpx.Client) -> None:
    """Each 20 @ 2,500 is 50,000, well under max_order_notional (1,000,000) and the position
    limit (1,000): only the working orders' value together reaches 120,000."""
    account = f"exp-{uuid.uuid4().hex[:6]}"
    codes = [_order(oms, account, 20, 2_500).status_code for _ in range(3)]
    assert codes == [201, 201, 422]
    third = _order(oms, account, 20, 2_500).json()
    assert "max exposure notional 120,000.00" in third["detail"], third
    assert "working buys 100,000.00" in third["detail"], third
    # 100,000 working: a LIMIT buy of 10 @ 2,000 (20,000) still fits; a MARKET buy of 10
    # is valued at the ask (30,010) and does not: each at its own price.
    assert _order(oms, account, 10).status_code == 422
    assert _order(oms, account, 10, 2_000).status_code == 201
    # The sells side is counted apart: a sell grows the exposure from 0 the other way.
    assert _order(oms, account, 20, 4_000, side="sell").status_code == 201


def test_concurrent_buys_against_the_exposure_notional(oms: httpx.Client) -> None:
    account = f"exp-{uuid.uuid4().hex[:6]}"
    with ThreadPoolExecutor(20) as pool:
        codes = list(pool.map(lambda _: _order(oms, account, 20, 2_500).status_code, range(20)))
    assert codes.count(201) == 2 and codes.count(422) == 18, codes


def test_a_cancel_releases_the_notional_the_order_held(oms: httpx.Client, risk_url: str,
                                                       nats_server: Proc) -> None:
    account = f"exp-{uuid.uuid4().hex[:6]}"
    first = _order(oms, account, 20, 2_500).json()
    assert _order(oms, account, 20, 2_500).status_code == 201
    assert _order(oms, account, 20, 2_500).status_code == 422
    publish(nats_server.url, [("exec.cancelled", {
        "id": f"cancelled-{first['order_id']}", "order_id": first["order_id"], "account": account,
        "symbol": NOTIONAL_SYMBOL, "cancelled_quantity": 20, "reason": "cancelled on request"})])
    get_json_until(f"{risk_url}/working",
                   lambda d: d["working"][0]["buy_notional"] == 50_000, params={"account": account})
    assert _order(oms, account, 20, 2_500).status_code == 201


def _fill(fields: dict[str, object]) -> contract.Fill:
    return msgspec.convert({"id": fields["fill_id"], "price": 1.0, **fields}, contract.Fill)
