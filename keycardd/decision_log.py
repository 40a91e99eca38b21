"""The JSONL decision log, written off the hot path.

The request path only puts a small tuple on a bounded in-memory queue (`submit`, never blocking); one writer task
turns entries into records (masking token-like strings, hashing file contents, which are never logged) and appends
them in batches from a worker thread. When the queue is full the entry is dropped and counted, and `status` shows
the count: a log must never slow down or block a decision, and a silent drop is a bug.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread
import msgspec
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from keycardd import decision_chain
from keycardd.redact import mask

if TYPE_CHECKING:  # types only: the export process reads records without loading the deciding code (~20 MB)
    from keycardd.adapters import HookAnswer
    from keycardd.engine import Engine

log = logging.getLogger(__name__)

QUEUE_SIZE = 4096
BATCH = 1024
BATCH_WINDOW_S = 0.05
MAX_BYTES = 10 * 1024 * 1024
KEEP = decision_chain.KEEP


class DecisionRecord(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One line of the decision log. The field names are stable: tools read them."""

    seq: int | None = None
    """The record's place in the hash chain (see decision_chain); set by the writer, across rotation."""
    prev: str | None = None
    """The sha256 of the previous line as written: an edited, deleted or moved line breaks the chain."""
    id: str
    time: str
    agent: str
    event: str
    tool: str
    decision: str
    """deny, ask, allow, no_objection, or `observed` for events that are logged but not decided."""
    policies: list[str] = []
    reason: str | None = None
    latency_us: float
    session_id: str | None = None
    cwd: str | None = None
    command: str | None = None
    file_path: str | None = None
    url: str | None = None
    content_size: int | None = None
    content_sha256: str | None = None
    repeated: bool = False
    canary: bool = False
    """A `keycardctl doctor` canary call (keycardd/canary.py): decided as any call, not an agent's."""
    tool_use_id: str | None = None
    """The agent's id for this tool call (Claude Code, Codex and Cursor send one): joins with the agent's telemetry."""
    prompt_id: str | None = None
    """The agent's id for the user prompt behind the call: Claude Code's `prompt_id`, Codex's `turn_id`, Cursor's
    `generation_id`."""
    policy_sha256: str | None = None
    """The policy set that decided (`status`'s policy sha256): which policy version an audit is looking at."""
    zone_version: str | None = None
    """The enforced zone policy set versions (`org@v3, team@v1`), when the decision used zone policy."""


class _Correlation(msgspec.Struct):
    """The ids an agent's payload carries for joining with its own telemetry; every one optional."""

    tool_use_id: object = None
    prompt_id: object = None
    turn_id: object = None
    generation_id: object = None


@dataclass(frozen=True, slots=True)
class _Entry:
    answer: HookAnswer
    latency_us: float
    wall_time: float
    payload: bytes = b""
    """The agent's payload as received: its correlation ids are read off the hot path, by the writer."""
    engine: Engine | None = None
    """The policy that decided (the store's engine when the answer was given)."""
    canary: bool = False


class DecisionLog:
    def __init__(
        self, path: Path, max_bytes: int = MAX_BYTES, keep: int = KEEP, sink: Callable[[bytes, int], None] | None = None
    ) -> None:
        """`sink`, when given, receives each encoded batch and its record count instead of the file: a replica
        process hands its records to the primary, which is the log's only writer."""
        self.path = path
        self.max_bytes = max_bytes
        self.keep = keep
        self.dropped = 0
        self.written = 0
        self._sink = sink
        self._file_lock = threading.Lock()  # the writer task and replicas' batches append from worker threads
        self._send: MemoryObjectSendStream[_Entry]
        self._receive: MemoryObjectReceiveStream[_Entry]
        self._send, self._receive = anyio.create_memory_object_stream[_Entry](QUEUE_SIZE)
        self._encoder = msgspec.json.Encoder()
        self._head: decision_chain.ChainHead | None = None  # read from disk by the first append
        self.finished = anyio.Event()
        """Set once the writer has stopped and written what was queued: the exporter flushes after it."""
        self.export: Callable[[bytes, int], None] | None = None
        """Set when telemetry export is configured: receives every batch of encoded records (never blocks)."""

    def submit(
        self,
        answer: HookAnswer,
        latency_us: float,
        payload: bytes = b"",
        engine: Engine | None = None,
        *,
        canary: bool = False,
    ) -> None:
        """Queue one answer for logging; never blocks, never raises."""
        try:
            self._send.send_nowait(_Entry(answer, latency_us, time.time(), payload, engine, canary))
        except anyio.WouldBlock:
            self.dropped += 1

    async def run(self) -> None:
        """The writer task: drain the queue in batches until cancelled, then write what is still queued (a clean
        shutdown loses no record that was decided) and set `finished`."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:  # decisions go on; every record that cannot be written is counted as dropped
            log.error("cannot create the decision log directory %s: %s", self.path.parent, exc.strerror)
        gathered: list[_Entry] = []
        async with self._receive:
            try:
                async for first in self._receive:
                    # Gather for a moment: one thread hand-off per batch, not per decision, keeps the loop free.
                    gathered = [first]
                    await anyio.sleep(BATCH_WINDOW_S)
                    batch, gathered = self._more(gathered, BATCH), []
                    await self._write(batch)
            finally:
                with anyio.CancelScope(shield=True):
                    rest = self._more(gathered, QUEUE_SIZE)
                    if rest:
                        await self._write(rest)
                    self.finished.set()

    def _more(self, batch: list[_Entry], limit: int) -> list[_Entry]:
        """`batch` and what else is queued, up to `limit` entries."""
        while len(batch) < limit:
            try:
                batch.append(self._receive.receive_nowait())
            except anyio.WouldBlock:
                break
        return batch

    async def _write(self, batch: list[_Entry]) -> None:
        lines = b"".join(self._encoder.encode(record(entry)) + b"\n" for entry in batch)
        if self._sink is not None:
            self._sink(lines, len(batch))
        else:
            await self.append_encoded(lines, len(batch))

    async def append_encoded(self, lines: bytes, records: int) -> None:
        """Append encoded records: this process's batches, and its replicas' (the primary is the only writer, so
        rotation stays consistent). Records that cannot be written whole are dropped and counted."""
        try:
            written = await anyio.to_thread.run_sync(self._append, lines)
        except OSError as exc:
            self.dropped += records
            log.error("cannot write the decision log %s: %s", self.path, exc.strerror or exc)
            return
        self.written += written
        if written < records:
            self.dropped += records - written
            log.error("decision log %s is full: %d of %d records dropped", self.path, records - written, records)

    def _append(self, lines: bytes) -> int:
        """Append whole records and return how many were written. A short write (a full disk, a file size limit)
        is retried for the rest; when it cannot go on, the record it cut is truncated away, so the file only ever
        holds whole lines and the next batch starts on a fresh one. The hash chain is linked here, by the one
        writer, so replicas' records take their place in it like this process's own."""
        with self._file_lock:
            chained: list[bytes] = []
            count = 0
            try:
                if self._head is None:
                    self._head = decision_chain.recover_head(decision_chain.log_files(self.path, self.keep)[::-1])
                chained, heads = decision_chain.link(lines, self._head)
                count = self._write_chained(b"".join(chained))
                if count:
                    self._head = heads[count - 1]
                return count
            finally:
                if self.export is not None:
                    self.export(*_for_export(lines, chained[:count]))

    def _write_chained(self, lines: bytes) -> int:
        try:
            if self.path.stat().st_size + len(lines) > self.max_bytes:
                self._rotate()
        except FileNotFoundError:
            pass
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)  # read: the last byte
        try:
            start = os.fstat(fd).st_size
            if start and os.pread(fd, 1, start - 1) != b"\n":  # cut off earlier (a crash mid-write)
                _write_all(fd, b"\n")
                start += 1
            written = _write_all(fd, lines)
            if written < len(lines):
                written = lines.rfind(b"\n", 0, written) + 1
                os.ftruncate(fd, start + written)
            return lines.count(b"\n", 0, written)
        finally:
            os.close(fd)

    def _rotate(self) -> None:
        for index in range(self.keep - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{index}")
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{index + 1}"))
        self.path.replace(self.path.with_name(f"{self.path.name}.1"))

    def chain_status(self) -> dict[str, object]:
        """The last record written (`seq`, `head` hash), once this process has written one: `--verify` compares
        the file's end with it, so lines cut from the end or a last line edited show too."""
        head = self._head
        return {"seq": head.seq, "head": head.hash} if head is not None else {}

    def status(self) -> dict[str, object]:
        return {"path": str(self.path), "dropped": self.dropped, "written": self.written}


def _for_export(lines: bytes, written: list[bytes]) -> tuple[bytes, int]:
    """The batch as the exporter gets it, and its record count: the records written with their place in the chain
    (`seq`, `prev`: the off-machine copy can be checked against the file), the rest as they are. Records the disk
    refused are exported all the same: the off-machine copy does not depend on the local disk."""
    unchained = [line + b"\n" for line in lines.splitlines() if line.startswith(b"{")]
    return b"".join(written + unchained[len(written) :]), len(unchained)


def _write_all(fd: int, data: bytes) -> int:
    """Write `data`, looping on short writes; returns the bytes written (fewer when the writes fail part-way)."""
    view = memoryview(data)
    written = 0
    while written < len(data):
        try:
            count = os.write(fd, view[written:])
        except OSError:
            if not written:
                raise
            return written
        if count == 0:
            return written
        written += count
    return written


def _masked(value: object) -> str | None:
    """Paths carry tokens too (`~/.cache/tokens/ghp_...`, a signed URL saved as a file name)."""
    return mask(value) if isinstance(value, str) else None


def record_of(answer: HookAnswer) -> DecisionRecord:
    """The record an answer is logged as, now (the shadow evaluator's differences are exported in this shape)."""
    return record(_Entry(answer, 0.0, time.time()))


def record(entry: _Entry) -> DecisionRecord:
    answer = entry.answer
    call, decision = answer.call, answer.decision
    context = call.context
    command = context.get("command")
    content = call.content
    tool_use_id, prompt_id = _correlation(entry.payload)
    return DecisionRecord(
        id=uuid.uuid4().hex,
        time=datetime.fromtimestamp(entry.wall_time, UTC).isoformat(timespec="milliseconds"),
        agent=call.agent,
        event=call.event,
        tool=call.tool,
        decision=decision.outcome.value if decision else "observed",
        policies=list(decision.policies) if decision else [],
        reason=mask(decision.reason) if decision else None,
        latency_us=round(entry.latency_us, 1),
        session_id=_masked(context.get("session_id")),
        cwd=_masked(context.get("cwd")),
        command=mask(command) if isinstance(command, str) else None,
        file_path=_masked(context.get("file_path")),
        url=mask(context["url"]) if isinstance(context.get("url"), str) else None,
        content_size=len(content.encode("utf-8", "surrogatepass")) if content is not None else None,
        content_sha256=hashlib.sha256(content.encode("utf-8", "surrogatepass")).hexdigest() if content else None,
        repeated=answer.repeated,
        tool_use_id=tool_use_id,
        prompt_id=prompt_id,
        policy_sha256=entry.engine.sha256 if entry.engine is not None else None,
        zone_version=_zone_version(entry.engine),
        canary=entry.canary,
    )


MAX_ID = 200
"""Longer ids are cut: an id is for joining, and a payload must not be able to fill the log through one."""
_decode_correlation = msgspec.json.Decoder(_Correlation).decode


def _correlation(payload: bytes) -> tuple[str | None, str | None]:
    """`tool_use_id` and the prompt id from the agent's payload, masked like every other field (they come from
    the agent, so they are text it chose). A payload that does not decode has none."""
    if not payload:
        return None, None
    try:
        ids = _decode_correlation(payload)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None, None
    prompt = next((value for value in (ids.prompt_id, ids.turn_id, ids.generation_id) if isinstance(value, str)), None)
    return _id(ids.tool_use_id), _id(prompt)


def _id(value: object) -> str | None:
    return mask(value[:MAX_ID]) if isinstance(value, str) and value else None


def _zone_version(engine: Engine | None) -> str | None:
    """The zone policy set versions among the engine's sources (named `zone:<set>@v<version>/<policy>`, and
    `zone:bundle/<policy>`): `org@v3, bundle`, as `status` shows the zone's version."""
    if engine is None:
        return None
    names = [
        source.name.removeprefix("zone:").split("/", 1)[0]
        for source in engine.sources
        if source.name.startswith("zone:")
    ]
    return ", ".join(dict.fromkeys(names)) or None
