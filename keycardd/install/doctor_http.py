"""`keycardctl doctor` for http hooks: each installed hook is POSTed the canaries exactly as Claude Code would send
them (its URL, its headers), and the answers are compared with what the daemon says they must be.

That catches what makes an http hook useless or open: no listener (keycardd started without it, or another port),
a secret that no longer matches (401), a gate without `onFailure: block` (a down daemon lets tools run), and a
settings file others can read (it holds the secret).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from keycardd import canary, tcp_owner
from keycardd.install import claude
from keycardd.install.config_file import ConfigFileError, read_json
from keycardd.install.doctor import CANARIES, Check, expected_answer

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def settings_files(project: Path | None) -> list[Path]:
    """Each settings file once, by resolved path (run from $HOME, the project's is the user's)."""
    files = [claude.settings_path("user", None)]
    if project is not None:
        files += [claude.settings_path("project", project), claude.settings_path("project", project, http=True)]
    unique: dict[Path, Path] = {}
    for path in files:
        unique.setdefault(path.resolve(), path)
    return list(unique.values())


def http_checks(project: Path | None, daemon_up: bool, token: str | None = None) -> Iterator[Check]:
    """Checks for every settings file holding keycardd http hooks."""
    for path in settings_files(project):
        try:
            hooks = claude.installed_http(read_json(path))
        except ConfigFileError:
            continue
        if not hooks:
            continue
        yield Check("claude http config", True, f"{path}: {len(hooks)} keycardd http hooks")
        mode = stat.S_IMODE(path.stat().st_mode)
        yield Check(
            "claude http settings permissions",
            mode & 0o077 == 0,
            f"{path} is {mode:04o} and holds the hook secret",
            "" if mode & 0o077 == 0 else f"chmod 600 {path}",
        )
        open_gates = sorted(
            event for event, hook in hooks if event in claude.GATES and hook.get("onFailure") != "block"
        )
        yield Check(
            "claude http fail-closed",
            not open_gates,
            f"gates without onFailure block: {', '.join(open_gates)}" if open_gates else "every gate blocks on failure",
            "" if not open_gates else "reinstall with `keycardctl install claude --transport http`",
        )
        if not daemon_up:
            continue
        for address in sorted({str(hook["url"]) for _, hook in hooks}):
            owner = _owner_problem(address)
            yield Check(
                "claude http listener owner",
                owner is None,
                owner or f"{address} is served by a process of your uid",
                "" if owner is None else "stop that process and start keycardd (`keycardctl service install`)",
            )
        for hook in {_request_key(hook): hook for _, hook in hooks}.values():
            for label, payload in CANARIES["claude"]:
                raw = json.dumps(payload).encode()
                want = expected_answer("claude", raw)
                problem = _post_problem(hook, raw, (want["stdout"] or "{}").encode(), token)
                name = f"claude http hook ({hook['url']})"
                if problem is None:
                    yield Check(name, True, f"{label} canary: {want['decision'] or 'observed'} as the policy says")
                else:
                    yield Check(name, False, f"{label} canary: {problem}", _fix_for(problem))


def _owner_problem(url: str) -> str | None:
    """Another local user listening on the port would receive the hooks, secret and all, and answer them."""
    if not tcp_owner.available():
        return None
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        address = socket.getaddrinfo(host, parts.port, family, socket.SOCK_STREAM)[0][4]
    except OSError:
        return None
    uid = tcp_owner.listener_uid(family, (str(address[0]), int(address[1])))
    if uid is None or uid == os.getuid():
        return None
    return f"the process listening at {url} belongs to uid {uid}, not to you: it receives your hooks and their secret"


def _request_key(hook: dict[str, Any]) -> str:
    """Hooks that send the same request need one canary run."""
    return json.dumps([hook.get(key) for key in ("url", "headers", "allowedEnvVars")], sort_keys=True)


def _post_problem(hook: dict[str, Any], body: bytes, want: bytes, token: str | None = None) -> str | None:
    """POST `body` as Claude Code would (marked with doctor's canary `token`); None if the answer is `want`, else
    what went wrong."""
    parts = urlsplit(str(hook["url"]))
    allowed = set(hook.get("allowedEnvVars") or [])
    headers = {"Content-Type": "application/json"}
    for name, value in (hook.get("headers") or {}).items():
        headers[str(name)] = _interpolate(str(value), allowed)
    if token:
        headers[canary.HEADER] = token
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port or 80, timeout=10)
    try:
        connection.request("POST", parts.path, body=body, headers={k: v for k, v in headers.items() if v})
        response = connection.getresponse()
        answer = response.read()
    except OSError as exc:
        return f"nothing answers at {hook['url']} ({exc}); Claude Code blocks every gated tool call"
    finally:
        connection.close()
    if response.status == 401:
        return "keycardd refused the hook's secret (401): the settings and the daemon hold different secrets"
    if response.status != 200:
        return f"HTTP {response.status}: {answer[:200]!r}"
    if answer != want:
        return f"got {answer[:200]!r}, expected {want[:200]!r}"
    return None


def _interpolate(value: str, allowed: set[str]) -> str:
    """Claude Code's header interpolation: listed variables from the environment, anything else empty."""
    return _VARIABLE.sub(
        lambda match: os.environ.get(name, "") if (name := match[1] or match[2]) in allowed else "", value
    )


def _fix_for(problem: str) -> str:
    if problem.startswith("nothing answers"):
        return "start keycardd (`keycardctl service start`); it serves http hooks once the hook secret exists"
    if "secret" in problem:
        return "restart keycardd so it reads the current secret, or reinstall with `--transport http`"
    return "reinstall with `keycardctl install claude --transport http`"
