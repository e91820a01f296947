"""What Graph's ``$batch`` and the Exchange admin API's ``$batch`` share: each item is answered as the request it
describes (through the same dispatcher, so faults, budgets and the request log see it), and the replies come back
in an order clients must not rely on."""

from __future__ import annotations

import json
import random
from typing import Any

from .http import Request, make_request


def answer_item(emulator: Any, outer: Request, item_id: str, method: str, path: str, query_text: str,
                item: dict[str, Any]) -> dict[str, Any]:
    """The reply item for one batch item, sent to ``path``: ``{id, status, headers, body}`` plus ``_wrote``."""
    headers = {str(key): str(value) for key, value in (item.get("headers") or {}).items()}
    for name in ("authorization", "client-request-id"):
        if outer.headers.get(name) and not any(key.lower() == name for key in headers):
            headers[name] = outer.headers[name]
    body = item.get("body")
    raw = b"" if body is None else (body.encode() if isinstance(body, str) else json.dumps(body).encode())
    inner = make_request(method, path, query_text, headers, raw, base_url=outer.origin,
                         remote_addr=outer.remote_addr or "127.0.0.1")
    response = emulator.dispatch(inner, parent=outer.log.get("seq"))
    if inner.log.get("tenant") and not outer.log.get("tenant"):
        outer.log["tenant"] = inner.log["tenant"]
    result: dict[str, Any] = {
        "id": item_id,
        "status": response.status,
        "headers": {key: value for key, value in response.headers.items()
                    if key.lower() not in ("content-length", "request-id", "client-request-id")},
        "_wrote": bool(inner.log.get("wrote")),
    }
    if response.body is not None:
        parsed = response.json()
        result["body"] = parsed if parsed is not None else response.encoded_body().decode("utf-8", "replace")
    return result


def finish(outer: Request, responses: list[dict[str, Any]]) -> dict[str, Any]:
    """The batch reply's body: the items in a shuffled order (clients that rely on the order fail here, not
    live), and the outer request logged as writing when any item wrote."""
    order = list(range(len(responses)))
    random.shuffle(order)
    if len(order) > 1 and order == sorted(order):
        order.reverse()
    outer.log["wrote"] = any(response.pop("_wrote") for response in responses)
    return {"responses": [responses[index] for index in order]}
