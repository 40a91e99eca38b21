"""A scripted stand-in for the Anthropic Messages API, so the real Claude Code CLI runs offline in tests.

It is a real HTTP server on 127.0.0.1. Each request of the main conversation (the one offering tools) gets the
next scripted `tool_use`, one per turn; when the script is used up it answers with a short text and ends the turn.
Every request body is kept, so a test can read the `tool_result` Claude Code sent back: that is what the model saw
(a hook's deny reason, or the command's output).
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
    """(tool name, tool input) for each turn, in order."""
    requests: list[dict[str, Any]] = field(default_factory=list)
    turns: int = 0
    """How many scripted calls have been handed out (Claude Code trims history, so it cannot be counted there)."""

    def tool_results(self) -> list[dict[str, Any]]:
        """Every tool_result block Claude Code sent back, in order."""
        found = []
        for request in self.requests:
            for message in request.get("messages", []):
                content = message.get("content")
                if isinstance(content, list):
                    found.extend(block for block in content if block.get("type") == "tool_result")
        return found

    def tool_result_text(self) -> str:
        texts = []
        for block in self.tool_results():
            content = block.get("content")
            if isinstance(content, str):
                texts.append(content)
            elif isinstance(content, list):
                texts.extend(part.get("text", "") for part in content if isinstance(part, dict))
        return "\n".join(texts)


def _events(blocks: list[dict[str, Any]], stop_reason: str) -> Iterator[bytes]:
    def event(kind: str, data: dict[str, Any]) -> bytes:
        return f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode()

    message = {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": "claude-fake",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 1},
    }
    yield event("message_start", {"type": "message_start", "message": message})
    for index, block in enumerate(blocks):
        if block["type"] == "text":
            yield event(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}},
            )
            delta = {"type": "text_delta", "text": block["text"]}
        else:
            start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            yield event("content_block_start", {"type": "content_block_start", "index": index, "content_block": start})
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
        yield event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
        yield event("content_block_stop", {"type": "content_block_stop", "index": index})
    yield event(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": 5},
        },
    )
    yield event("message_stop", {"type": "message_stop"})


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        if not self.path.startswith("/v1/messages") or self.path.startswith("/v1/messages/count_tokens"):
            self._json({"input_tokens": 10} if "count_tokens" in self.path else {})
            return
        script = self.server.script
        script.requests.append(body)
        offered = {tool.get("name") for tool in body.get("tools", [])}
        turn = script.turns
        if turn < len(script.calls) and script.calls[turn][0] in offered:
            script.turns += 1
            name, tool_input = script.calls[turn]
            blocks = [{"type": "tool_use", "id": f"toolu_fake{turn}", "name": name, "input": tool_input}]
            stop = "tool_use"
        else:
            blocks, stop = [{"type": "text", "text": "Done."}], "end_turn"
        if body.get("stream"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            for chunk in _events(blocks, stop):
                self.wfile.write(chunk)
            self.wfile.flush()
            return
        self._json(
            {
                "id": "msg_fake",
                "type": "message",
                "role": "assistant",
                "model": "claude-fake",
                "content": blocks,
                "stop_reason": stop,
                "stop_sequence": None,
                "usage": {"input_tokens": 10, "output_tokens": 5},
            }
        )

    def do_GET(self) -> None:
        self._json({})

    def do_HEAD(self) -> None:
        self.send_response(200)
        self.end_headers()

    def _json(self, document: dict[str, Any]) -> None:
        data = json.dumps(document).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    script: Script


@contextmanager
def fake_anthropic(script: Script) -> Iterator[str]:
    """Serve `script` on 127.0.0.1 and yield the base URL for ANTHROPIC_BASE_URL."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.script = script
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
