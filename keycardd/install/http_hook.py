"""Claude Code `http` hook entries that point at keycardd's loopback listener: how they are written and recognised.

A gating event's entry has `"onFailure": "block"`: without it Claude Code lets the tool run when the daemon is down,
answers non-2xx or times out. The entry holds the hook secret as a literal header, so the settings file holding it is
written 0600 (and, for a project, is `.claude/settings.local.json`, which is not committed). What a shim forwards
from its environment travels in headers: `KEYCARD_RUN*` filled by Claude Code from its own environment
(`allowedEnvVars`), and the project directory written literally by a project install, because Claude Code sets
`CLAUDE_PROJECT_DIR` only in its hook processes' environment, never for header interpolation (seen with 2.1.330).
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from keycardd.http_server import DEFAULT_HOST, DEFAULT_PORT, parse_port

PATH = "/hooks/claude"
TIMEOUT_S = 10
INTERPOLATED = {"X-Keycard-Run": "KEYCARD_RUN", "X-Keycard-Run-Session-Id": "KEYCARD_RUN_SESSION_ID"}
"""Headers Claude Code fills from its own environment; the daemon reads them as a shim's forwarded variables."""


def url(host: str | None = None, port: int | None = None) -> str:
    """The listener's URL, resolved as `keycardd` resolves its `--http-host`/`--http-port` defaults."""
    host = host or os.environ.get("KEYCARDD_HTTP_HOST") or DEFAULT_HOST
    port = port or parse_port(os.environ.get("KEYCARDD_HTTP_PORT") or str(DEFAULT_PORT))
    return f"http://{f'[{host}]' if ':' in host else host}:{port}{PATH}"


def entry(hook_url: str, secret: str, *, gate: bool, project: Path | None = None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {secret}"}
    headers.update({header: f"${{{name}}}" for header, name in INTERPOLATED.items()})
    if project is not None:
        headers["X-Claude-Project-Dir"] = str(project)
    hook: dict[str, Any] = {"type": "http", "url": hook_url, "timeout": TIMEOUT_S, "headers": headers}
    hook["allowedEnvVars"] = sorted(INTERPOLATED.values())
    if gate:
        hook["onFailure"] = "block"
    return hook


def is_ours(hook: Any) -> bool:
    """An http hook posting to `/hooks/claude` on a loopback address: keycardd's (whatever its port)."""
    if not (isinstance(hook, dict) and hook.get("type") == "http" and isinstance(hook.get("url"), str)):
        return False
    parts = urlsplit(hook["url"])
    if parts.path != PATH or parts.hostname is None:
        return False
    try:
        return parts.hostname == "localhost" or ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False
