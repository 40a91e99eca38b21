"""The decision log's hash chain: each record names the one before it, so edits and deletions show.

The writer prefixes every record with `"seq":N,"prev":"<sha256 of the previous line>"`. The sequence runs on
across rotation (the first record of a new file names the last line of the rotated one), so `verify` can tell an
edited line (its hash no longer matches the next record's `prev`), deleted lines (a gap in `seq`), reordered lines
(a `seq` that is missing here but appears later) and a cut line (not a whole JSON record).

This is tamper evidence, not tamper proof: there is no key an agent running as the same user could not read, so
an agent that rewrites the whole chain from a point on is not caught here; the exported copy (OTLP) is the
off-machine record. What it does catch is the naive edit: a line deleted, changed or moved.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import msgspec

GENESIS = "0" * 64
KEEP = 3
"""Rotated files kept beside the current one (`decisions.jsonl.1` is the newest)."""
_TAIL_BYTES = 64 * 1024


class _Link(msgspec.Struct):
    seq: int
    prev: str


_decode_link = msgspec.json.Decoder(_Link).decode


def log_files(path: Path, keep: int = KEEP) -> list[Path]:
    """The log's files, oldest first: the rotated ones, then the current one."""
    return [*(path.with_name(f"{path.name}.{index}") for index in range(keep, 0, -1)), path]


def line_hash(line: bytes) -> str:
    """The hash a record's successor carries: of the line as written, without its newline."""
    return hashlib.sha256(line).hexdigest()


@dataclass(slots=True)
class ChainHead:
    """The last record written: the writer continues from it."""

    seq: int = 0
    hash: str = GENESIS


def link(lines: bytes, head: ChainHead) -> tuple[list[bytes], list[ChainHead]]:
    """Chain encoded records (one JSON object a line) onto `head`; returns each chained line (with its newline)
    and the head after it, so a caller that writes only some of them knows where the chain stands."""
    chained: list[bytes] = []
    heads: list[ChainHead] = []
    seq, prev = head.seq, head.hash
    for line in lines.splitlines():
        if not line.startswith(b"{"):
            continue  # every record is a JSON object; anything else is not ours to chain
        seq += 1
        rest = line[1:].lstrip()
        separator = b"" if rest.startswith(b"}") else b","
        out = b'{"seq":%d,"prev":"%s"%s%s' % (seq, prev.encode(), separator, rest)
        prev = line_hash(out)
        chained.append(out + b"\n")
        heads.append(ChainHead(seq, prev))
    return chained, heads


def recover_head(files: Sequence[Path]) -> ChainHead:
    """Where the chain stands on disk: the last whole line of the newest file that has one (`files` newest
    first). A record that does not parse still fixes the hash; its sequence is then taken as the last one read."""
    for path in files:
        try:
            with path.open("rb") as handle:
                size = handle.seek(0, 2)
                handle.seek(max(0, size - _TAIL_BYTES))
                tail = handle.read()
        except FileNotFoundError:
            continue
        whole = tail[: tail.rfind(b"\n") + 1].splitlines()
        if not whole:
            continue
        last = whole[-1]
        for after, line in enumerate(reversed(whole)):
            parsed = _parse(line)
            if parsed is not None:
                return ChainHead(parsed.seq + after, line_hash(last))
        return ChainHead(0, line_hash(last))
    return ChainHead()


@dataclass(frozen=True, slots=True)
class Break:
    """The first place the chain does not hold."""

    file: Path
    line: int
    why: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.why}"


@dataclass(frozen=True, slots=True)
class Verdict:
    records: int
    unchained: int
    """Leading records written before the chain existed (an upgrade); they are not part of it."""
    first_break: Break | None


def verify(files: Iterable[Path], head: ChainHead | None = None) -> Verdict:
    """Check the chain across `files`, oldest first. The oldest record kept anchors it: what came before it
    was rotated away. `head`, the running writer's last record, checks the end: lines cut from it, the last one
    edited."""
    entries: list[_Entry] = []
    cut: Break | None = None
    for path in files:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            continue
        lines = data.split(b"\n")
        tail = lines.pop()  # b"" when the file ends with a newline, as every whole file does
        entries.extend(_Entry(path, number, line, _parse(line)) for number, line in enumerate(lines, 1))
        if tail:
            cut = Break(path, len(lines) + 1, "the last line is cut off (not a whole record)")
            break
    unchained, first_break = _first_break(entries, cut)
    if first_break is None and head is not None:
        first_break = _check_end(entries[unchained:], head)
    return Verdict(len(entries), unchained, first_break)


def _check_end(chained: list[_Entry], head: ChainHead) -> Break | None:
    last = chained[-1] if chained else None
    seq = last.link.seq if last is not None and last.link is not None else 0
    if seq < head.seq:
        missing = head.seq - seq
        where = (last.file, last.line + 1) if last is not None else (Path("(the log)"), 1)
        why = f"{missing} record{'s' if missing > 1 else ''} deleted from the end (keycardd wrote record {head.seq})"
        return Break(where[0], where[1], why)
    if last is not None and seq == head.seq and line_hash(last.text) != head.hash:
        return Break(last.file, last.line, "edited: the last record does not match the one keycardd wrote")
    return None


@dataclass(frozen=True, slots=True)
class _Entry:
    file: Path
    line: int
    text: bytes
    link: _Link | None


def _parse(line: bytes) -> _Link | None:
    try:
        return _decode_link(line)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None


def _first_break(entries: list[_Entry], cut: Break | None) -> tuple[int, Break | None]:
    """The number of leading unchained records, and the first break after them (else `cut`)."""
    unchained = 0
    while unchained < len(entries) and entries[unchained].link is None and _is_record(entries[unchained].text):
        unchained += 1
    chained = entries[unchained:]
    seqs = {entry.link.seq for entry in chained if entry.link is not None}
    for previous, entry in zip([None, *chained], chained, strict=False):
        if entry.link is None:
            why = (
                "not a chained record (edited or its chain removed)"
                if _is_record(entry.text)
                else ("not a whole record (edited, or cut off by a crash)")
            )
            return unchained, Break(entry.file, entry.line, why)
        if previous is None or previous.link is None:
            continue
        expected = previous.link.seq + 1
        if entry.link.seq < expected:
            why = f"record {entry.link.seq} comes after record {previous.link.seq}: lines reordered or duplicated"
            return unchained, Break(entry.file, entry.line, why)
        if entry.link.seq > expected:
            if expected in seqs:
                why = f"record {entry.link.seq} comes where record {expected} belongs: lines reordered"
            else:
                missing = entry.link.seq - expected
                why = f"{missing} record{'s' if missing > 1 else ''} deleted before this line"
            return unchained, Break(entry.file, entry.line, why)
        if entry.link.prev != line_hash(previous.text):
            why = f"edited: its hash does not match the prev of the next record ({entry.file.name}:{entry.line})"
            return unchained, Break(previous.file, previous.line, why)
    return unchained, cut


def _is_record(line: bytes) -> bool:
    try:
        return isinstance(msgspec.json.decode(line), dict)
    except msgspec.DecodeError:
        return False
