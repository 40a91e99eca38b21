"""Decoding a hook payload leniently: BOM, CRLF, non-object JSON and missing fields all become clear errors."""

from __future__ import annotations

import ntpath
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

_decode = msgspec.json.Decoder().decode
_WINDOWS_PATH = re.compile(r"^[A-Za-z]:[\\/]")
_BOM = b"\xef\xbb\xbf"
_EVENT = re.compile(rb'"hook_event_name"\s*:\s*"([A-Za-z]{1,64})"')


@dataclass(frozen=True, slots=True)
class Payload:
    """The decoded JSON object (empty when it could not be decoded) and, if so, why."""

    data: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    event_hint: str | None = None
    """For a payload that is not valid JSON: the event name found by a byte scan (as the shims do), so the deny is
    still written in that event's vocabulary."""


def decode(raw: bytes) -> Payload:
    """Decode the bytes an agent wrote to the hook's stdin. Never raises."""
    if raw.startswith(_BOM):
        raw = raw[len(_BOM) :]
    if not raw.strip():
        return Payload(error="the payload is empty")
    try:
        data = _decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        return Payload(error=f"the payload is not valid JSON ({exc})", event_hint=_scan_event(raw))
    except RecursionError:  # msgspec's answer to arrays or objects nested thousands deep
        return Payload(error="the payload's JSON is nested too deeply", event_hint=_scan_event(raw))
    if not isinstance(data, dict):
        return Payload(error="the payload is not a JSON object")
    return Payload(data=data)


def _scan_event(raw: bytes) -> str | None:
    match = _EVENT.search(raw)
    return match[1].decode("ascii") if match else None


def optional_str(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) else None


def required_str(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise ValueError(f"`tool_input.{key}` is missing or not a string")  # noqa: TRY004 - becomes "malformed"
    return value


def absolute_path(path: str, cwd: str) -> str:
    """Normalise a path for matching: Windows backslashes become `/`, `~` and relative paths are resolved."""
    if _WINDOWS_PATH.match(path):
        return ntpath.normpath(path).replace("\\", "/")
    expanded = os.path.expanduser(path)
    if not os.path.isabs(expanded) and cwd and not _WINDOWS_PATH.match(cwd):
        expanded = os.path.join(cwd, expanded)
    return os.path.normpath(expanded) if os.path.isabs(expanded) else expanded


def add_secure_session(context: dict[str, Any], env: Mapping[str, str]) -> None:
    """`keycardctl run` marks the agents it starts in their environment: policies see `keycard_run` and the
    session's id, whichever agent's hook forwarded them."""
    context["keycard_run"] = env.get("KEYCARD_RUN") == "1"
    if env.get("KEYCARD_RUN_SESSION_ID"):
        context["keycard_run_session_id"] = env["KEYCARD_RUN_SESSION_ID"]
