"""A symbol and an account have one rule each: the contract's Structs and every HTTP body,
path and query agree on what is one (they were 8 regexes carrying 3 rules)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from pydantic import TypeAdapter, ValidationError

from services import contract
from services.kit import names

pytestmark = pytest.mark.unit

SYMBOLS = ["BTCUSDT", "brk.b", "X-1_2", "A" * 32, "", "A" * 33, "BTC USDT", "BTC,ETH", "Ü", "a:b", "BTC\n"]
ACCOUNTS = ["default", "desk:7@fund", "a.b-c_d", "A" * 64, "", "A" * 65, "a b", "a\n", "x/y", "é"]


def _takes(rule: Any, value: str) -> bool:  # an Annotated type of services.names
    try:
        TypeAdapter(rule).validate_python(value)
    except ValidationError:
        return False
    return True


def _decodes(value: str, field: str) -> bool:
    request = {"symbol": "X", "side": "buy", "quantity": 1, field: value}
    try:
        contract.decode(msgspec.json.encode(request), contract.RiskCheckRequest)
    except msgspec.ValidationError:
        return False
    return True


@pytest.mark.parametrize("value", SYMBOLS)
def test_one_symbol_rule(value: str) -> None:
    assert _takes(names.Symbol, value) == _decodes(value, "symbol")
    assert _takes(names.Symbols, value) == _takes(names.Symbol, value) or "," in value


@pytest.mark.parametrize("value", ACCOUNTS)
def test_one_account_rule(value: str) -> None:
    assert _takes(names.Account, value) == _decodes(value, "account")


def test_the_rules_say_what_they_take() -> None:
    assert TypeAdapter(names.Symbol).validate_python("btcusdt") == "BTCUSDT"  # any case, upper-cased
    assert TypeAdapter(names.Symbols).validate_python("aapl,MSFT") == "AAPL,MSFT"
    assert [v for v in SYMBOLS if _takes(names.Symbol, v)] == ["BTCUSDT", "brk.b", "X-1_2", "A" * 32]
    taken = [v for v in ACCOUNTS if _takes(names.Account, v)]
    assert taken == ["default", "desk:7@fund", "a.b-c_d", "A" * 64]
