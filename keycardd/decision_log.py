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

import anyio
import anyio.to_thread
import msgspec
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from keycardd import decision_chain
from keycardd.adapters import HookAnswer
from keycardd.redact import mask

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


@dataclass(frozen=True, slots=True)
class _Entry:
    answer: HookAnswer
    latency_us: float
    wall_time: float
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

    def submit(self, answer: HookAnswer, latency_us: float, *, canary: bool = False) -> None:
        """Queue one answer for logging; never blocks, never raises."""
        try:
            self._send.send_nowait(_Entry(answer, latency_us, time.time(), canary))
        except anyio.WouldBlock:
            self.dropped += 1

    async def run(self) -> None:
        """The writer task: drain the queue in batches until cancelled."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:  # decisions go on; every record that cannot be written is counted as dropped
            log.error("cannot create the decision log directory %s: %s", self.path.parent, exc.strerror)
        async with self._receive:
            async for first in self._receive:
                # Gather for a moment: one thread hand-off per batch, not per decision, keeps the loop free.
                await anyio.sleep(BATCH_WINDOW_S)
                batch = [first]
                while len(batch) < BATCH:
                    try:
                        batch.append(self._receive.receive_nowait())
                    except anyio.WouldBlock:
                        break
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
            if self._head is None:
                self._head = decision_chain.recover_head(decision_chain.log_files(self.path, self.keep)[::-1])
            chained, heads = decision_chain.link(lines, self._head)
            lines = b"".join(chained)
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
                count = lines.count(b"\n", 0, written)
                if count:
                    self._head = heads[count - 1]
                return count
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


def record(entry: _Entry) -> DecisionRecord:
    answer = entry.answer
    call, decision = answer.call, answer.decision
    context = call.context
    command = context.get("command")
    content = call.content
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
        session_id=context.get("session_id"),
        cwd=_masked(context.get("cwd")),
        command=mask(command) if isinstance(command, str) else None,
        file_path=_masked(context.get("file_path")),
        url=mask(context["url"]) if isinstance(context.get("url"), str) else None,
        content_size=len(content.encode("utf-8", "surrogatepass")) if content is not None else None,
        content_sha256=hashlib.sha256(content.encode("utf-8", "surrogatepass")).hexdigest() if content else None,
        repeated=answer.repeated,
        canary=entry.canary,
    )
