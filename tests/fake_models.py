"""Scripted stand-ins for the OpenAI Responses API (Codex CLI) and the Gemini API (Gemini CLI), so the real CLIs run
offline in tests.

Each is a real HTTP server on 127.0.0.1. The main conversation (the request offering the scripted tool) gets the
next scripted tool call, one per turn; once the script is used up (or the tool is not offered) the answer is a short
text that ends the turn. Every request body is kept, so a test can read what the model was told about the call: a
hook's deny reason, or the command's output.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Script:
    calls: list[tuple[str, dict[str, Any]]]
    """(tool name, arguments) for each turn, in order."""
    requests: list[dict[str, Any]] = field(default_factory=list)
    turns: int = 0

    def next_call(self, offered: set[Any]) -> tuple[str, dict[str, Any]] | None:
        if self.turns < len(self.calls) and self.calls[self.turns][0] in offered:
            self.turns += 1
            return self.calls[self.turns - 1]
        return None

    def told(self) -> str:
        """Everything the CLIs sent back to the model, as one string to search (tool outputs included)."""
        return "\n".join(json.dumps(request) for request in self.requests)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._send(200, "application/json", b'{"models": [], "data": []}')

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        if self.server.api == "responses" and self.path.endswith("/responses"):
            self._responses(body)
        elif self.server.api == "gemini" and (":streamGenerateContent" in self.path or ":generateContent" in self.path):
            self._gemini(body, stream=":streamGenerateContent" in self.path)
        else:
            self._send(200, "application/json", b"{}")

    def _send(self, status: int, content_type: str, data: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _responses(self, body: dict[str, Any]) -> None:
        script = self.server.script
        offered = {tool.get("name") for tool in body.get("tools", []) if isinstance(tool, dict)}
        call = script.next_call(offered) if offered else None
        if offered:
            script.requests.append(body)
        turn = script.turns
        item: dict[str, Any]
        if call is not None:
            item = {"type": "function_call", "id": f"fc_{turn}", "call_id": f"call_{turn}", "name": call[0],
                    "arguments": json.dumps(call[1]), "status": "completed"}  # fmt: skip
        else:
            text = {"type": "output_text", "text": "Done.", "annotations": []}
            item = {
                "type": "message",
                "id": f"msg_{turn}",
                "role": "assistant",
                "status": "completed",
                "content": [text],
            }
        usage = {"input_tokens": 10, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 5,
                 "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 15}  # fmt: skip
        response: dict[str, Any] = {
            "id": f"resp_{len(script.requests)}",
            "object": "response",
            "status": "completed",
            "usage": usage,
        }
        events = [
            {"type": "response.created", "response": {**response, "status": "in_progress"}},
            {"type": "response.output_item.added", "output_index": 0, "item": item},
            {"type": "response.output_item.done", "output_index": 0, "item": item},
            {"type": "response.completed", "response": {**response, "output": [item]}},
        ]
        data = b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)
        self._send(200, "text/event-stream", data)

    def _gemini(self, body: dict[str, Any], *, stream: bool) -> None:
        script = self.server.script
        offered = {
            declaration.get("name")
            for tool in body.get("tools", [])
            for declaration in (tool.get("functionDeclarations") or [])
            if isinstance(declaration, dict)
        }
        contents: list[dict[str, Any]] = body.get("contents") or []
        last_parts = contents[-1].get("parts", []) if contents else []
        answering = any("functionResponse" in part for part in last_parts)
        call = script.next_call(offered) if offered and (script.turns == 0 or answering) else None
        if offered:
            script.requests.append(body)
        if call is not None:
            part: dict[str, Any] = {"functionCall": {"name": call[0], "args": call[1]}}
        else:
            part = {"text": "Done."}
        chunk = {
            "candidates": [{"content": {"role": "model", "parts": [part]}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 15},
            "modelVersion": "gemini-fake",
        }
        if stream:
            self._send(200, "text/event-stream", f"data: {json.dumps(chunk)}\n\n".encode())
        else:
            self._send(200, "application/json", json.dumps(chunk).encode())


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, script: Script, api: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.script = script
        self.api = api


@contextmanager
def fake_model(script: Script, api: str) -> Iterator[str]:
    """Serve `script` as `api` ("responses" or "gemini"); yields the base URL."""
    server = _Server(script, api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
