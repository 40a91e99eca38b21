"""The daemon's wire protocol: length-prefixed MessagePack frames whose schema is the msgspec structs below.

A frame is a 4-byte big-endian unsigned length followed by that many bytes of MessagePack. Each request is a map
tagged by its `type` field; the daemon answers each request with exactly one reply frame, in order, and a client
may keep the connection open for more. A frame that cannot be decoded gets an `ErrorReply` and the connection is
closed. The C shim (`hooks/keycard-hook.c`) speaks the `hook` request and reads `hook_result` / `error` replies
by hand, so changes to those three structs must be made there too.
"""

from __future__ import annotations

import struct
from typing import Any

import msgspec

MAX_FRAME = 1 << 20
"""The largest frame either side accepts (1 MiB); a longer length prefix is refused before reading the body."""

HEADER = struct.Struct(">I")


class HookRequest(msgspec.Struct, tag="hook", tag_field="type", frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One agent hook call, forwarded verbatim by a shim: the daemon does all the parsing."""

    agent: str
    """`claude` or `cursor`."""
    payload: bytes
    """The exact bytes the agent wrote to the hook's stdin."""
    env: dict[str, str] = {}
    """The few environment values the daemon needs: cwd, CLAUDE_PROJECT_DIR, CURSOR_VERSION, KEYCARD_RUN, ..."""


class StatusRequest(msgspec.Struct, tag="status", tag_field="type", frozen=True, forbid_unknown_fields=True):
    """Ask for the daemon's status document (the `keycardctl status --json` keys)."""


class ExplainRequest(
    msgspec.Struct, tag="explain", tag_field="type", frozen=True, kw_only=True, forbid_unknown_fields=True
):
    """Decide a hook payload without counting or logging it, and return the full explanation."""

    agent: str
    payload: bytes
    env: dict[str, str] = {}


class CanaryRequest(msgspec.Struct, tag="canary", tag_field="type", frozen=True, forbid_unknown_fields=True):
    """Ask for a token that marks doctor's canary hook calls (see keycardd/canary.py): answered with
    `{"token", "expires_in_s"}`."""


class ReloadRequest(msgspec.Struct, tag="reload", tag_field="type", frozen=True, forbid_unknown_fields=True):
    """Re-read every policy source now (and sync the zone when one is configured)."""


class CredentialRequest(
    msgspec.Struct, tag="credential", tag_field="type", frozen=True, kw_only=True, forbid_unknown_fields=True
):
    """Ask the credential broker for a token for `resource` (issue: credentials and secure sessions)."""

    resource: str
    scopes: tuple[str, ...] = ()
    session_id: str | None = None


class ReplicaReport(
    msgspec.Struct, tag="replica_report", tag_field="type", frozen=True, kw_only=True, forbid_unknown_fields=True
):
    """What a replica process (`keycardd --processes N`) did since its last report. Accepted only on the private
    channel between the primary and its replicas: the primary owns `status` and the decision log."""

    decisions: dict[str, int] = {}
    latencies_us: list[float] = []
    log_lines: bytes = b""
    """Encoded decision-log records, ready to append."""
    log_records: int = 0
    log_dropped: int = 0
    shadow: dict[str, int] = {}
    """`evaluated`, `differences` and `dropped` since the last report."""
    served: int = 0
    refused: int = 0
    http: dict[str, int] = {}
    """Changes in the replica's http hook counters (`served`, `refused`, `rejected`, `open_connections`)."""
    ready: bool = False
    """Set on the first report, once the replica serves and handles signals: only then may the primary signal it."""


class HookResult(msgspec.Struct, tag="hook_result", tag_field="type", frozen=True, kw_only=True):
    """What the shim must write: these stdout bytes, then exit with this code."""

    stdout: bytes
    exit_code: int = 0


class ErrorReply(msgspec.Struct, tag="error", tag_field="type", frozen=True, kw_only=True):
    """The request could not be served; `message` is one sentence a person can act on."""

    message: str


class DocumentReply(msgspec.Struct, tag="document", tag_field="type", frozen=True, kw_only=True):
    """A JSON-shaped answer (status, explain, reload, credential metadata)."""

    body: dict[str, Any]


Request = (
    HookRequest | StatusRequest | ExplainRequest | ReloadRequest | CredentialRequest | CanaryRequest | ReplicaReport
)
Reply = HookResult | ErrorReply | DocumentReply

_request_decoder: msgspec.msgpack.Decoder[Request] = msgspec.msgpack.Decoder(Request)
_reply_decoder: msgspec.msgpack.Decoder[Reply] = msgspec.msgpack.Decoder(Reply)
_encoder = msgspec.msgpack.Encoder()


class FrameError(Exception):
    """A frame was too large, truncated, or not a valid message."""


def encode(message: Request | Reply) -> bytes:
    """Serialise one message with its length prefix."""
    body = _encoder.encode(message)
    if len(body) > MAX_FRAME:
        raise FrameError(f"message of {len(body)} bytes exceeds the {MAX_FRAME}-byte frame limit")
    return HEADER.pack(len(body)) + body


def frame_length(header: bytes, limit: int = MAX_FRAME) -> int:
    """Validate a 4-byte length prefix and return the body length it announces."""
    (length,) = HEADER.unpack(header)
    if length > limit:
        raise FrameError(f"frame of {length} bytes exceeds the {limit}-byte limit")
    return int(length)


def decode_request(body: bytes) -> Request:
    """Decode a request body (without its length prefix). Any body, however hostile, is a request or a
    `FrameError`: a map nested a thousand deep makes msgspec raise `RecursionError`, not `DecodeError`."""
    try:
        return _request_decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise FrameError(f"malformed request: {exc}") from None
    except RecursionError:
        raise FrameError("malformed request: nested too deeply") from None


def decode_reply(body: bytes) -> Reply:
    """Decode a reply body (without its length prefix)."""
    try:
        return _reply_decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise FrameError(f"malformed reply: {exc}") from None
    except RecursionError:
        raise FrameError("malformed reply: nested too deeply") from None
