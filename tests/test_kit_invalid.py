"""Readable reasons for invalid input (services.kit.invalid)."""

from __future__ import annotations

import orjson
import pytest
from pydantic import BaseModel, ValidationError

from services.kit.invalid import invalid_response, reasons

pytestmark = pytest.mark.unit


class Thing(BaseModel):
    quantity: float
    side: str


def test_one_reason_per_problem_with_its_location() -> None:
    with pytest.raises(ValidationError) as info:
        Thing.model_validate_json(b'{"quantity": "x"}')
    found = reasons(info.value.errors())
    assert found[0].startswith("quantity: ") and found[1].startswith("side: ")
    resp = invalid_response(info.value.errors())
    assert resp.status_code == 422
    assert orjson.loads(resp.body)["detail"] == "; ".join(found)


def test_malformed_json_has_no_empty_location() -> None:
    with pytest.raises(ValidationError) as info:
        Thing.model_validate_json(b'{"quantity": ')
    assert reasons(info.value.errors())[0].startswith("Invalid JSON")
