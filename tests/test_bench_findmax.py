"""The capacity search converges on the highest passing rate and says what limited it."""

from __future__ import annotations

import pytest

from trade_ops.bench.findmax import find_max
from trade_ops.savedruns import Step

pytestmark = pytest.mark.unit


def test_converges_on_the_knee() -> None:
    found = find_max(lambda r: Step(rate=r, passed=r <= 1234, valid=True), 100, 20000, precision=0.05)
    assert found.max_rate is not None and 1234 * 0.95 <= found.max_rate <= 1234
    assert found.limited_by == "slo" and len(found.steps) <= 12


def test_generator_limit_is_reported() -> None:
    found = find_max(lambda r: Step(rate=r, passed=r <= 800, valid=r <= 800), 100, 20000)
    assert found.limited_by == "generator"


def test_nothing_passes() -> None:
    found = find_max(lambda r: Step(rate=r, passed=False, valid=True), 100, 20000)
    assert found.max_rate is None and len(found.steps) <= 12


def test_limit_reached() -> None:
    found = find_max(lambda r: Step(rate=r, passed=True, valid=True), 100, 1000)
    assert found.max_rate == 1000 and found.limited_by == "limit"
