"""A stand-in for Slack's Web API on 127.0.0.1, the way bolt-python tests itself: the real Bolt
app's `WebClient` is pointed at it (`RAG_SLACK_API_URL`), and it records every call.

It keeps what the bot posts, so `conversations.replies` returns real threads, and it answers a
call with an error or a 429 when a test queues one.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlparse

BOT_USER, BOT_ID, TEAM = "UBOT", "BBOT", "T1"


@dataclass
class Call:
    method: str
    params: dict
    status: int
    token: str
    at: float  # time.monotonic() when it arrived


    @property
    def channel(self) -> str | None:
        return self.params.get("channel")


class MockSlack:
    def __init__(self):
        self.calls: list[Call] = []
        self.messages: list[dict] = []  # what a channel holds: people's messages and the bot's
        self.queued: list[tuple[str, str | None, int, dict, dict]] = []  # method, channel, status, body, headers
        self.lock = threading.Lock()
        self._last_ts = 0.0
        mock = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self._handle()

            def do_POST(self):
                self._handle()

            def _handle(self):
                url = urlparse(self.path)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                params = dict(parse_qsl(url.query))
                if "json" in (self.headers.get("Content-Type") or ""):
                    params.update(json.loads(raw or "{}"))
                else:
                    params.update(parse_qsl(raw))
                if isinstance(params.get("blocks"), str):
                    params["blocks"] = json.loads(params["blocks"])
                status, body, headers = mock.respond(url.path.strip("/"), params,
                                                     self.headers.get("Authorization", ""))
                data = json.dumps(body).encode()
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # ------------------------------------------------------------------ what tests script and read

    def queue(self, method: str, *, channel: str | None = None, status: int = 200, error: str = "internal_error",
              retry_after: int | None = None) -> None:
        """The next `method` call (in `channel`) fails: a 429 with Retry-After, or `ok: false`."""
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        with self.lock:
            self.queued.append((method, channel, status, {"ok": False, "error": error}, headers))

    def new_ts(self) -> str:
        """A message id as Slack makes them: the time of posting, unique and increasing."""
        with self.lock:
            self._last_ts = max(time.time(), self._last_ts + 0.000001)
            return f"{self._last_ts:.6f}"

    def add_message(self, channel: str, ts: str, text: str, user: str, thread_ts: str | None = None) -> None:
        """Someone wrote in a channel (once: a redelivered event adds nothing)."""
        with self.lock:
            if any(m["channel"] == channel and m["ts"] == ts for m in self.messages):
                return
            self.messages.append({"channel": channel, "ts": ts, "text": text, "user": user,
                                  **({"thread_ts": thread_ts} if thread_ts else {})})

    def calls_to(self, method: str, **params) -> list[Call]:
        with self.lock:
            return [c for c in self.calls if c.method == method
                    and all(c.params.get(key) == value for key, value in params.items())]

    def wait_for(self, predicate, timeout: float = 120.0):
        """Poll until `predicate()` returns something truthy; return it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if found := predicate():
                return found
            time.sleep(0.1)
        raise AssertionError(f"timed out; calls so far: {[(c.method, c.params) for c in self.calls]}")

    # ------------------------------------------------------------------ the API

    def respond(self, method: str, params: dict, authorization: str) -> tuple[int, dict, dict]:
        with self.lock:
            for i, (queued_method, channel, status, body, headers) in enumerate(self.queued):
                if queued_method == method and channel in (None, params.get("channel")):
                    del self.queued[i]
                    self.calls.append(Call(method, params, status, authorization, time.monotonic()))
                    return status, body, headers
            self.calls.append(Call(method, params, 200, authorization, time.monotonic()))
            return 200, self._ok(method, params), {}

    def _ok(self, method: str, params: dict) -> dict:
        if method == "auth.test":
            return {"ok": True, "url": "https://test.slack.invalid/", "team": "Test", "user": "interview-qa",
                    "team_id": TEAM, "user_id": BOT_USER, "bot_id": BOT_ID}
        if method == "chat.postMessage":
            self._last_ts = max(time.time(), self._last_ts + 0.000001)
            message = {"channel": params["channel"], "ts": f"{self._last_ts:.6f}", "text": params.get("text", ""),
                       "user": BOT_USER, "bot_id": BOT_ID, **({"thread_ts": params["thread_ts"]} if params.get("thread_ts") else {})}
            self.messages.append(message)
            return {"ok": True, "channel": message["channel"], "ts": message["ts"], "message": message}
        if method == "chat.update":
            for message in self.messages:
                if message["channel"] == params["channel"] and message["ts"] == params["ts"]:
                    message["text"] = params.get("text", "")
            return {"ok": True, "channel": params["channel"], "ts": params["ts"]}
        if method == "chat.postEphemeral":
            return {"ok": True}
        if method == "conversations.replies":
            thread = [m for m in self.messages if m["channel"] == params["channel"]
                      and params["ts"] in (m["ts"], m.get("thread_ts"))]
            return {"ok": True, "messages": sorted(thread, key=lambda m: float(m["ts"])), "has_more": False}
        return {"ok": True}
