"""The order contract of an OMS (and the check of a risk service): what it reads, and how
its answer says what became of the order. One module, read by doctor and bench alike.

The original OMS read `type` where this project's reads `order_type`, upper-case sides,
and required `price`; it answered HTTP 200 `{"status": "RISK_REJECTED"}` for an order
risk refused. The contract comes, in this order, from the stack file's `[contracts.order]`
/ `[contracts.risk]` table, from the service's OpenAPI schema (`/openapi.json`), or is
this project's own (the builtin services):

    [contracts.order]
    fields = { order_type = "type", account = "account_id" }  # our name = their name ("": not sent)
    values = { side = { buy = "BUY", sell = "SELL" } }
    required = ["price"]                                       # our names
    defaults = { price = 45000 }                               # what to send when not given
    rejected = ["RISK_REJECTED", "BLOCKED"]                    # statuses that are a rejection

An answer is read by `Contract.read` into one Verdict:

    ACCEPTED  the order is open (ACCEPTED, SENT, NEW, PARTIALLY_FILLED, ...): follow it
    FILLED    done, filled
    REJECTED  refused: a status listed in `rejected`, any status containing REJECT (the
              schema's enum lists them; a body may name one the schema does not), or our
              OMS's `result: rejected`; never followed for fills
    ENDED     done without a fill: CANCELLED, EXPIRED, ...
    INVALID   a 4xx that is not a rejection: the request did not fit the contract
    ERROR     a 5xx, or nothing readable
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SYNONYMS", "Contract", "Reading", "Verdict", "builtin", "from_openapi", "from_table",
           "learn", "resolve", "table_lines"]

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
# What an answer carries, under the names OMSes use.
_STATUS_KEYS = ("status", "state", "order_status", "orderStatus")
_ID_KEYS = ("order_id", "id", "orderId")
_REASON_KEYS = ("reason", "reject_reason", "rejectReason", "error", "detail", "message", "details")
_WORDS = {"side": ("buy", "sell"), "order_type": ("MARKET", "LIMIT"), "time_in_force": ("GTC", "IOC", "DAY")}
_ENDED = ("CANCEL", "EXPIRE", "CLOSED", "DONE", "KILLED", "FAILED")


class Verdict(enum.StrEnum):
    ACCEPTED = "accepted"
    FILLED = "filled"
    REJECTED = "rejected"
    ENDED = "ended"
    INVALID = "invalid"
    ERROR = "error"


@dataclass(frozen=True)
class Reading:
    """What an OMS answer says: the verdict, its own status word and reason, the order."""

    verdict: Verdict
    status: str | None = None
    reason: str | None = None
    order_id: str | None = None
    order: dict[str, Any] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.verdict not in (Verdict.ACCEPTED,)

    def shown(self) -> str:
        """`RISK_REJECTED: no responders` - the OMS's own words."""
        word = self.status or self.verdict.value
        if not self.reason or self.reason == word:
            return word
        return self.reason if self.reason.startswith(word) else f"{word}: {self.reason}"


@dataclass
class Contract:
    source: str
    names: dict[str, str] = field(default_factory=lambda: {k: k for k in SYNONYMS})  # ours -> theirs
    values: dict[str, dict[str, str]] = field(default_factory=dict)  # ours -> {our value: theirs}
    required: set[str] = field(default_factory=set)  # our names; or theirs, for fields we do not know
    defaults: dict[str, Any] = field(default_factory=dict)  # our names -> what to send
    rejected: frozenset[str] = frozenset()  # status words that are a rejection (upper case)
    statuses: tuple[str, ...] = ()  # the status enum the OMS's schema states, if any
    described: bool = True  # False: the schema does not say what the body holds (an untyped object)

    @property
    def needs_price(self) -> bool:
        return "price" in self.required

    def missing(self, given: dict[str, Any]) -> list[str]:
        """Required fields of theirs that we know nothing of and no one gave a value for."""
        known = {**self.defaults, **given}
        return sorted(r for r in self.required if r not in SYNONYMS and r not in known)

    def body(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Our fields (over the contract's defaults), named and spelled as this contract reads
        them; the ones it lacks left out."""
        out: dict[str, Any] = {}
        for ours, value in {**self.defaults, **{k: v for k, v in fields.items() if v is not None}}.items():
            theirs = self.names.get(ours) if ours in SYNONYMS else ours  # a field of theirs, given as is
            if not theirs:  # not in this contract (`fields = { account = "" }`: not sent)
                continue
            spelled = self.values.get(ours, {})
            out[theirs] = spelled.get(value, value) if isinstance(value, str) else value
        return out

    def describe(self) -> str:
        renamed = [f"{o}->{t or '(not sent)'}" for o, t in self.names.items() if o != t]
        parts = [self.source, *(["fields " + ", ".join(renamed)] if renamed else []),
                 *([f"requires {', '.join(sorted(self.required))}"] if self.required else []),
                 *([f"rejections {', '.join(sorted(self.rejections()))}"] if self.rejections() else [])]
        return " · ".join(parts)

    def rejections(self) -> set[str]:
        """The rejection statuses known before any answer: listed, or in the schema's enum."""
        return set(self.rejected) | {s for s in self.statuses if "REJECT" in s.upper()}

    # -- answers ----------------------------------------------------------------------------
    def status_verdict(self, status: str) -> Verdict:
        word = status.upper()
        if word in self.rejected or "REJECT" in word:
            return Verdict.REJECTED
        if "FILL" in word and "PARTIAL" not in word:
            return Verdict.FILLED
        if any(w in word for w in _ENDED):
            return Verdict.ENDED
        return Verdict.ACCEPTED

    def read(self, code: int, doc: Any) -> Reading:
        """The verdict of an answer (HTTP status `code`, JSON body `doc`)."""
        if not isinstance(doc, dict):
            if 200 <= code < 300 or code >= 500 or code == 0:
                return Reading(Verdict.ERROR, reason="the answer is not a JSON object")
            return Reading(Verdict.INVALID, reason="the answer is not a JSON object")
        order = _obj(doc.get("order")) or doc
        status = _first(order, (self.names.get("status", "status"), *_STATUS_KEYS))
        order_id = _first(order, (self.names.get("order_id", "order_id"), *_ID_KEYS))
        reason = _reason(doc) or (_reason(order) if order is not doc else None)
        said = str(status).upper() if isinstance(status, str | int) and str(status) else None
        verdict = self.status_verdict(said) if said else None
        if doc.get("result") == "rejected":  # this project's OMS: 422 {"result": "rejected"}
            verdict = Verdict.REJECTED
        if code >= 500:
            return Reading(Verdict.ERROR, said, reason, order_id, order)
        if 400 <= code < 500:
            return Reading(verdict if verdict == Verdict.REJECTED else Verdict.INVALID, said, reason,
                           order_id, order)
        if verdict is None:  # a 2xx without a status: an error text and no order is a refusal
            verdict = Verdict.REJECTED if order_id is None and _first(doc, ("error",)) else Verdict.ACCEPTED
        return Reading(verdict, said, reason, order_id, order)

    def rejects(self, code: int, body: bytes) -> bool:
        """bench's hot path: is this answer a rejection? Most are not, and say so at a glance."""
        if 200 <= code < 300 and b"REJECT" not in body.upper() and b'"error"' not in body \
                and not any(w.encode() in body.upper() for w in self.rejected):
            return False
        try:
            import orjson

            doc = orjson.loads(body)
        except ValueError:
            return False
        return self.read(code, doc).verdict == Verdict.REJECTED


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _first(doc: dict[str, Any], keys: tuple[str, ...]) -> Any:
    return next((doc[k] for k in keys if doc.get(k) not in (None, "")), None)


def _reason(doc: dict[str, Any]) -> str | None:
    value = _first(doc, _REASON_KEYS)
    if value is None:
        return None
    if isinstance(value, list):
        value = "; ".join(str(v.get("msg", v)) if isinstance(v, dict) else str(v) for v in value[:5])
    return str(value)[:300]


def builtin() -> Contract:
    return Contract("this project's OMS",
                    statuses=("PENDING", "ACCEPTED", "REJECTED", "PARTIALLY_FILLED", "FILLED", "CANCELLED"))


# -- OpenAPI --------------------------------------------------------------------------------
def _resolve(doc: dict[str, Any], schema: Any, depth: int = 0) -> dict[str, Any]:
    while isinstance(schema, dict) and "$ref" in schema and depth < 8:
        node: Any = doc
        for part in str(schema["$ref"]).lstrip("#/").split("/"):
            node = node.get(part, {}) if isinstance(node, dict) else {}
        schema, depth = node, depth + 1
    if isinstance(schema, dict) and isinstance(schema.get("allOf"), list) and schema["allOf"]:
        return _resolve(doc, schema["allOf"][0], depth + 1)
    return schema if isinstance(schema, dict) else {}


def _operation(doc: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    return _obj(_obj(_obj(doc.get("paths")).get(path)).get(method))


def _json_schema(doc: dict[str, Any], holder: Any) -> dict[str, Any]:
    media = _obj(_obj(_obj(holder).get("content")).get("application/json"))
    return _resolve(doc, media.get("schema"))


def _statuses(doc: dict[str, Any], path: str) -> tuple[str, ...]:
    """The order status enum, from the answers of POST `path` and GET `path/{id}`, or any
    schema with a `status` enum when those do not say."""
    answers = [r for op in (_operation(doc, path, "post"), *(
        _operation(doc, p, "get") for p in _obj(doc.get("paths")) if str(p).startswith(path + "/{")))
        for r in _obj(op.get("responses")).values()]
    schemas = [_json_schema(doc, r) for r in answers]
    schemas += [_resolve(doc, s) for s in _obj(_obj(doc.get("components")).get("schemas")).values()]
    for schema in schemas:
        props = _obj(schema.get("properties"))
        for key in _STATUS_KEYS:
            enum_ = _resolve(doc, props.get(key)).get("enum") if key in props else None
            if isinstance(enum_, list) and enum_:
                return tuple(str(v) for v in enum_)
    return ()


def _match_value(ours: str, enum_: list[Any]) -> str | None:
    return next((str(v) for v in enum_ if str(v).lower() == ours.lower()), None)


def from_openapi(doc: Any, path: str, source: str) -> Contract | None:
    """The contract of `POST path` in an OpenAPI document; None when there is no document or
    it does not know the path. A body schema without properties (an untyped object) gives
    a contract with our field names, `described=False`."""
    if not isinstance(doc, dict) or not _operation(doc, path, "post"):
        return None
    schema = _json_schema(doc, _operation(doc, path, "post").get("requestBody"))
    statuses = _statuses(doc, path)
    props = schema.get("properties")
    if not isinstance(props, dict) or not props:
        return Contract(f"{source} (its order body is an untyped object: field names unknown)",
                        statuses=statuses, described=False)
    contract = Contract(source, names={}, required=set(), statuses=statuses)
    for ours, names in SYNONYMS.items():
        theirs = next((n for n in names if n in props), None)
        if theirs is None:
            continue
        contract.names[ours] = theirs
        enum_ = _resolve(doc, props[theirs]).get("enum")
        if isinstance(enum_, list):
            contract.values[ours] = {w: m for w in _WORDS.get(ours, ()) if (m := _match_value(w, enum_))}
        if theirs in (schema.get("required") or []):
            contract.required.add(ours)
    if "MARKET" not in contract.values.get("order_type", {"MARKET": "MARKET"}):
        contract.required.add("price")  # no MARKET orders there: a LIMIT needs its price
    known = set(contract.names.values())
    contract.required |= {str(r) for r in schema.get("required") or [] if r not in known}
    return contract


def from_table(table: dict[str, Any], source: str) -> Contract:
    names = {k: k for k in SYNONYMS}
    names.update({str(k): str(v) for k, v in (table.get("fields") or {}).items()})
    values = {str(k): {str(a): str(b) for a, b in v.items()} for k, v in (table.get("values") or {}).items()
              if isinstance(v, dict)}
    defaults = _obj(table.get("defaults"))
    rejected = frozenset(str(x).upper() for x in table.get("rejected") or [])
    required = {str(x) for x in table.get("required") or []}
    if "MARKET" not in values.get("order_type", {"MARKET": "MARKET"}):
        required.add("price")
    return Contract(source, names, values, required, defaults, rejected)


def resolve(table: dict[str, Any] | None, openapi: Any, path: str, url: str | None) -> Contract:
    """The contract, from what a deployment states: the stack file's table first, then the
    OpenAPI document read at `url` (None: this project's own service, not asked)."""
    if table is not None:
        kind = "order" if path == "/orders" else "risk"
        return from_table(table, f"[contracts.{kind}] in the stack file")
    if url is None:
        return builtin()
    return from_openapi(openapi, path, f"the OpenAPI schema at {url}") or builtin()


# -- learning from a validation answer ------------------------------------------------------
def learn(contract: Contract, text: str) -> Contract | None:
    """A contract corrected by an OMS's 4xx validation text ("type is required", "side must
    be one of ['BUY', 'SELL']", pydantic's `loc`), or None when the text teaches nothing.
    Used once, when the schema did not describe the body."""
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text))
    names, values, required = dict(contract.names), dict(contract.values), set(contract.required)
    for ours, theirs in SYNONYMS.items():
        named = [n for n in theirs if n in words and n != ours]
        if named:
            names[ours] = named[0]
        if re.search(rf"\b({'|'.join(theirs)})\b[^;,\]]*required", text) or \
                re.search(rf"required[^;,]*\b({'|'.join(theirs)})\b", text):
            required.add(ours)
        spelled = {w: m for w in _WORDS.get(ours, ()) if (m := _match_value(w, sorted(words))) and m != w}
        if spelled:
            values[ours] = spelled
        if not named and ours in names and _refused(names[ours], text):
            del names[ours]  # "unknown field client_order_id": this OMS does not take it
    if "MARKET" not in values.get("order_type", {"MARKET": "MARKET"}) or \
            (names.get("order_type") and "MARKET" not in words and "LIMIT" in words):
        required.add("price")
    if (names, values, required) == (contract.names, contract.values, contract.required):
        return None
    return Contract(f"{contract.source}, corrected by its validation answer", names, values, required,
                    contract.defaults, contract.rejected, contract.statuses, True)


def _refused(name: str, text: str) -> bool:
    near = r"[^;,\]\[]*"
    return bool(re.search(rf"(unknown|unexpected|extra|not permitted){near}\b{name}\b", text, re.I) or
                re.search(rf"\b{name}\b{near}(unknown|unexpected|not permitted)", text, re.I))


def table_lines(contract: Contract) -> str:
    """The `[contracts.order]` lines that state this contract in a stack file."""
    renamed = {o: t for o, t in contract.names.items() if o != t}
    renamed.update({o: "" for o in SYNONYMS if o not in contract.names})  # not taken there
    lines = ["[contracts.order]"]
    if renamed:
        lines.append("fields = { " + ", ".join(f'{o} = "{t}"' for o, t in renamed.items()) + " }")
    if contract.values:
        spelled = ", ".join(f"{o} = {{ " + ", ".join(f'{a} = "{b}"' for a, b in v.items()) + " }"
                            for o, v in contract.values.items() if v)
        lines.append(f"values = {{ {spelled} }}")
    if contract.required:
        lines.append("required = [" + ", ".join(f'"{r}"' for r in sorted(contract.required)) + "]")
    return "\n".join(lines)
