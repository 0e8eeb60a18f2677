"""The order (and risk check) a deployment's OMS reads, so doctor sends what it expects.

The original OMS read `type` where this project's reads `order_type`, upper-case sides,
and required `price`: doctor's order got 400 "Order validation failed" and it stopped
there. The contract comes, in this order, from the stack file's `[contracts.order]` /
`[contracts.risk]` table, from the service's OpenAPI schema (`/openapi.json`), or is
this project's own (the builtin services):

    [contracts.order]
    fields = { order_type = "type", account = "account_id" }  # our name = their name
    values = { side = { buy = "BUY", sell = "SELL" } }
    required = ["price"]                                       # our names
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["SYNONYMS", "Contract", "builtin", "from_openapi", "from_table"]

# Our field name -> the names other deployments use for it.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "account": ("account", "account_id", "accountId"),
    "symbol": ("symbol", "instrument", "ticker"),
    "side": ("side",),
    "quantity": ("quantity", "qty", "size", "amount"),
    "order_type": ("order_type", "type", "orderType"),
    "price": ("price", "limit_price", "limitPrice"),
    "time_in_force": ("time_in_force", "tif", "timeInForce"),
    "client_order_id": ("client_order_id", "clientOrderId", "client_id"),
}


@dataclass
class Contract:
    source: str
    names: dict[str, str] = field(default_factory=lambda: {k: k for k in SYNONYMS})  # ours -> theirs
    values: dict[str, dict[str, str]] = field(default_factory=dict)  # ours -> {our value: theirs}
    required: set[str] = field(default_factory=set)  # our names

    @property
    def needs_price(self) -> bool:
        return "price" in self.required

    def body(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Our fields, named and spelled as this contract reads them; the ones it lacks left out."""
        out: dict[str, Any] = {}
        for ours, value in fields.items():
            theirs = self.names.get(ours)
            if theirs is None or value is None:
                continue
            spelled = self.values.get(ours, {})
            out[theirs] = spelled.get(value, value) if isinstance(value, str) else value
        return out

    def describe(self) -> str:
        renamed = [f"{o}->{t}" for o, t in self.names.items() if o != t]
        parts = [self.source, *(["fields " + ", ".join(renamed)] if renamed else []),
                 *([f"requires {', '.join(sorted(self.required))}"] if self.required else [])]
        return " · ".join(parts)


def builtin() -> Contract:
    return Contract("this project's OMS")


def _resolve(doc: dict[str, Any], schema: Any, depth: int = 0) -> dict[str, Any]:
    while isinstance(schema, dict) and "$ref" in schema and depth < 8:
        node: Any = doc
        for part in str(schema["$ref"]).lstrip("#/").split("/"):
            node = node.get(part, {}) if isinstance(node, dict) else {}
        schema, depth = node, depth + 1
    if isinstance(schema, dict) and isinstance(schema.get("allOf"), list) and schema["allOf"]:
        return _resolve(doc, schema["allOf"][0], depth + 1)
    return schema if isinstance(schema, dict) else {}


def _request_schema(doc: dict[str, Any], path: str) -> dict[str, Any] | None:
    op = ((doc.get("paths") or {}).get(path) or {}).get("post") or {}
    content = ((op.get("requestBody") or {}).get("content") or {}).get("application/json") or {}
    schema = _resolve(doc, content.get("schema"))
    return schema if schema.get("properties") else None


def _match_value(ours: str, enum: list[Any]) -> str | None:
    return next((str(v) for v in enum if str(v).lower() == ours.lower()), None)


def from_openapi(doc: Any, path: str, source: str) -> Contract | None:
    """The contract of `POST path` in an OpenAPI document, or None when it does not say."""
    if not isinstance(doc, dict):
        return None
    schema = _request_schema(doc, path)
    if schema is None:
        return None
    props: dict[str, Any] = schema["properties"]
    contract = Contract(source, names={}, required=set())
    for ours, names in SYNONYMS.items():
        theirs = next((n for n in names if n in props), None)
        if theirs is None:
            continue
        contract.names[ours] = theirs
        enum = _resolve(doc, props[theirs]).get("enum")
        if isinstance(enum, list):
            words = {"side": ("buy", "sell"), "order_type": ("MARKET", "LIMIT"),
                     "time_in_force": ("GTC", "IOC", "DAY")}.get(ours, ())
            contract.values[ours] = {w: m for w in words if (m := _match_value(w, enum)) is not None}
        if theirs in (schema.get("required") or []):
            contract.required.add(ours)
    if "MARKET" not in contract.values.get("order_type", {"MARKET": "MARKET"}):
        contract.required.add("price")  # no MARKET orders there: a LIMIT needs its price
    return contract


def from_table(table: dict[str, Any], source: str) -> Contract:
    names = {k: k for k in SYNONYMS}
    names.update({str(k): str(v) for k, v in (table.get("fields") or {}).items()})
    values = {str(k): {str(a): str(b) for a, b in v.items()} for k, v in (table.get("values") or {}).items()
              if isinstance(v, dict)}
    return Contract(source, names, values, {str(x) for x in table.get("required") or []})
