"""Talking to the daemon from keycardctl, and the in-process fallback when it is not running."""

from __future__ import annotations

from typing import Any

from keycardd.cli._common import CliError
from keycardd.client import Client, DaemonUnavailableError
from keycardd.engine import Engine, PolicyError
from keycardd.policy_store import LocalSources
from keycardd.protocol import DocumentReply, ErrorReply, Request


def ask_daemon(request: Request) -> dict[str, Any]:
    """Send one request and return its document; raises `DaemonUnavailableError` when no daemon answers."""
    with Client() as client:
        reply = client.request(request)
    if isinstance(reply, ErrorReply):
        raise CliError(reply.message)
    if not isinstance(reply, DocumentReply):
        raise CliError(f"keycardd sent an unexpected {type(reply).__name__}")
    return reply.body


def compile_local() -> tuple[Engine | None, str | None, list[str]]:
    """Compile the local sources as the daemon would: (engine or None, error or None, source names)."""
    local = LocalSources.from_environment()
    try:
        sources = local.read()
        return Engine.compile(sources), None, [source.name for source in sources]
    except PolicyError as exc:
        return None, str(exc), []


__all__ = ["DaemonUnavailableError", "ask_daemon", "compile_local"]
