"""A minimal stdio MCP server for the end-to-end tests: one tool, `drop_table`, which records that it ran."""

from __future__ import annotations

import json
import sys
from pathlib import Path

MARKER = Path(sys.argv[1])
TOOL = {
    "name": "drop_table",
    "description": "Drop a database table.",
    "inputSchema": {"type": "object", "properties": {"table": {"type": "string"}}, "required": ["table"]},
}


def reply(message_id: object, result: dict[str, object]) -> None:
    sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": message_id, "result": result}) + "\n")
    sys.stdout.flush()


for line in sys.stdin:
    message = json.loads(line)
    method, message_id = message.get("method"), message.get("id")
    if message_id is None:
        continue  # notifications
    if method == "initialize":
        reply(
            message_id,
            {
                "protocolVersion": message["params"].get("protocolVersion", "2025-06-18"),
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "db", "version": "1"},
            },
        )
    elif method == "tools/list":
        reply(message_id, {"tools": [TOOL]})
    elif method == "tools/call":
        MARKER.write_text(json.dumps(message["params"]))
        reply(message_id, {"content": [{"type": "text", "text": "table dropped"}]})
    else:
        reply(message_id, {})
