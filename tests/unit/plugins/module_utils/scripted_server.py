# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A loopback HTTP server that answers from a script and records what it was sent."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


class ScriptedServer:
    """``answer(method, path, json_body, headers) -> (status, body, headers)``; every request is recorded."""

    def __init__(self, answer):
        self.answer = answer
        self.requests = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                record = {"method": self.command, "path": self.path, "body": body, "headers": dict(self.headers)}
                with server._lock:
                    server.requests.append(record)
                status, reply, headers = server.answer(self.command, self.path, body, record["headers"])
                data = reply if isinstance(reply, bytes) else (
                    reply.encode() if isinstance(reply, str) else json.dumps(reply).encode() if reply is not None
                    else b"")
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, str(value))
                if reply is not None and not isinstance(reply, (str, bytes)):
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_DELETE = _handle

            def log_message(self, *args):  # keep pytest output clean
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def without_exchange_batch(answer):
    def answer_without_batch(method, path, body, headers):
        if path.startswith("/adminapi/") and path.endswith("/$batch"):
            return 404, "Not Found", None
        return answer(method, path, body, headers)

    return answer_without_batch


def with_exchange_batch(answer):
    """``answer`` plus the admin API's $batch: each item is answered by ``answer`` as the InvokeCommand it
    carries, and the replies come back in reverse order (clients must match them by id)."""
    def answer_with_batch(method, path, body, headers):
        if not (path.startswith("/adminapi/") and path.endswith("/$batch")):
            return answer(method, path, body, headers)
        responses = []
        for item in body["requests"]:
            status, reply, reply_headers = answer(item["method"], urlsplit(item["url"]).path, item["body"],
                                                  item.get("headers") or {})
            responses.append({"id": item["id"], "status": status, "headers": dict(reply_headers or {}),
                              "body": reply})
        return 200, {"responses": responses[::-1]}, None

    return answer_with_batch
