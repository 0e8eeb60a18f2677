"""An impostor for the security tests (issue 25): a program that took a service's port.

It answers every request 200 (`/livez`, `/health` as healthy bodies without an instance
id, an order as ACCEPTED), and appends each Authorization header it is sent to the file
IMPOSTOR_LOG: the test reads there whether the CLI sent it the operator token.

    IMPOSTOR_LOG=/tmp/x python -m uvicorn tests.apps.impostor:app --port 8099
"""

from __future__ import annotations

import os
import uuid
from typing import Any

from tests.apps.tiny import Scope, json_answer, json_body, lifespan


async def app(scope: Scope, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    auth = dict(scope["headers"]).get(b"authorization")
    if auth is not None:
        with open(os.environ["IMPOSTOR_LOG"], "ab") as log:
            log.write(auth + b"\n")
    if scope["method"] == "POST":
        body = await json_body(receive)
        fields = body if isinstance(body, dict) else {}
        order = {**fields, "order_id": uuid.uuid4().hex, "status": "ACCEPTED"}
        return await json_answer(send, 201, order)
    await json_answer(send, 200, {"status": "pass", "serviceId": "oms", "description": "a trade-ops service"})
