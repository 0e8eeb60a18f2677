"""Every service documents its API offline: /openapi.json, every request body with a
schema (POST /orders and risk's /check included), no /docs page that needs a CDN."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services import contract

pytestmark = pytest.mark.unit


def _api(service: str) -> FastAPI:
    app: Any = importlib.import_module(f"services.{service.replace('-', '_')}.app").app
    return app if isinstance(app, FastAPI) else app.app  # oms: OrdersFastPath(api, kit)


@pytest.mark.parametrize("service", contract.ALL_SERVICES)
def test_every_body_has_a_schema_and_docs_need_no_network(service: str) -> None:
    api = _api(service)
    doc = api.openapi()
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            if method in ("post", "put", "patch") and path != "/health":
                schema = op.get("requestBody", {}).get("content", {}).get("application/json", {})
                assert schema.get("schema"), f"{service}: {method.upper()} {path} has no body schema"
    client = TestClient(api)  # no lifespan: the routes below touch no dependency
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/docs").status_code == 404 and client.get("/redoc").status_code == 404


def test_orders_and_check_are_documented_with_their_answers() -> None:
    orders = _api("oms").openapi()["paths"]["/orders"]["post"]
    assert orders["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("OrderRequest")
    assert {"201", "409", "422", "503"} <= set(orders["responses"])
    check = _api("risk").openapi()["paths"]["/check"]["post"]
    assert set(check["requestBody"]["content"]["application/json"]["schema"]["required"]) == \
        {"symbol", "side", "quantity"}
