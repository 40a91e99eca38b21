"""The decision log's hash chain: an agent that edits, deletes, moves or cuts lines is caught by `--verify`.

Each attack is done to a log the real writer produced (through `append_encoded`, the one path both this process's
batches and replicas' take), then checked through `keycardctl decisions --verify` as a user runs it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from conftest import DaemonProcess
from test_daemon import hook, status, wait_until

from keycardd import decision_chain
from keycardd.decision_log import DecisionLog


def _records(start: int, count: int) -> bytes:
    return b"".join(
        b'{"id":"r%d","decision":"allow","command":"echo %d"}\n' % (n, n) for n in range(start, start + count)
    )


async def _write(path: Path, count: int, max_bytes: int = 10 * 1024 * 1024) -> DecisionLog:
    log = DecisionLog(path, max_bytes=max_bytes)
    for start in range(0, count, 3):  # several batches, as the writer task and replicas hand them over
        await log.append_encoded(_records(start, min(3, count - start)), min(3, count - start))
    return log


def _verify(path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KEYCARD_DECISION_LOG": str(path)}
    return subprocess.run(
        [sys.executable, "-m", "keycardd.cli", "decisions", "--verify"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


@pytest.mark.anyio
async def test_an_intact_log_verifies_and_each_record_names_the_previous_line(tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    await _write(path, 10)
    lines = _lines(path)
    records = [json.loads(line) for line in lines]
    assert [record["seq"] for record in records] == list(range(1, 11))
    assert records[0]["prev"] == decision_chain.GENESIS
    for before, record in zip(lines, records[1:], strict=False):
        assert record["prev"] == decision_chain.line_hash(before.rstrip(b"\n"))
    assert records[4]["command"] == "echo 4"  # the record itself is unchanged
    result = _verify(path)
    assert result.returncode == 0, result.stderr
    assert "intact: 10 records" in result.stdout


@pytest.mark.anyio
async def test_the_chain_runs_on_across_rotation_and_verifies(tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    await _write(path, 30, max_bytes=1200)
    rotated = path.with_name("decisions.jsonl.1")
    assert rotated.exists()
    first_of_current = json.loads(_lines(path)[0])
    assert first_of_current["prev"] == decision_chain.line_hash(_lines(rotated)[-1].rstrip(b"\n"))
    result = _verify(path)
    assert result.returncode == 0, result.stderr
    # The oldest file's first record anchors the chain: the records rotated away before it are not a break.
    assert decision_chain.verify(decision_chain.log_files(path)).first_break is None


@pytest.mark.anyio
async def test_a_new_writer_continues_the_chain_already_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    await _write(path, 4)
    await _write(path, 4)  # a restarted daemon
    assert [json.loads(line)["seq"] for line in _lines(path)] == list(range(1, 9))
    assert _verify(path).returncode == 0


@pytest.mark.anyio
async def test_an_edited_line_is_reported_with_its_number(tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    await _write(path, 6)
    lines = _lines(path)
    lines[2] = lines[2].replace(b'"decision":"allow"', b'"decision":"deny"')
    path.write_bytes(b"".join(lines))
    result = _verify(path)
    assert result.returncode == 1
    assert f"{path}:3: edited" in result.stderr


@pytest.mark.anyio
async def test_a_deleted_line_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    await _write(path, 6)
    lines = _lines(path)
    del lines[3]
    path.write_bytes(b"".join(lines))
    result = _verify(path)
    assert result.returncode == 1
    assert f"{path}:4: 1 record deleted before this line" in result.stderr


@pytest.mark.anyio
async def test_a_deleted_line_in_a_rotated_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    await _write(path, 30, max_bytes=1200)
    rotated = path.with_name("decisions.jsonl.1")
    lines = _lines(rotated)
    del lines[-1]  # the record just before the current file
    rotated.write_bytes(b"".join(lines))
    result = _verify(path)
    assert result.returncode == 1
    assert f"{path}:1: 1 record deleted" in result.stderr


@pytest.mark.anyio
async def test_swapped_lines_are_reported_as_reordered(tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    await _write(path, 6)
    lines = _lines(path)
    lines[1], lines[2] = lines[2], lines[1]
    path.write_bytes(b"".join(lines))
    result = _verify(path)
    assert result.returncode == 1
    assert f"{path}:2: record 3 comes where record 2 belongs: lines reordered" in result.stderr


@pytest.mark.anyio
async def test_a_truncated_log_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    await _write(path, 6)
    data = path.read_bytes()
    path.write_bytes(data[: data.rfind(b"\n", 0, len(data) - 1) + 20])  # cut inside the last record
    result = _verify(path)
    assert result.returncode == 1
    assert f"{path}:6: the last line is cut off" in result.stderr


@pytest.mark.anyio
async def test_lines_truncated_away_show_as_a_gap_once_the_daemon_writes_again(tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    log = await _write(path, 6)
    path.write_bytes(b"".join(_lines(path)[:4]))  # the last two records removed while the daemon runs
    await log.append_encoded(_records(6, 1), 1)
    result = _verify(path)
    assert result.returncode == 1
    assert f"{path}:5: 2 records deleted before this line" in result.stderr


@pytest.mark.anyio
async def test_a_record_with_its_chain_fields_stripped_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    await _write(path, 4)
    lines = _lines(path)
    record = json.loads(lines[2])
    del record["seq"], record["prev"]
    lines[2] = json.dumps(record).encode() + b"\n"
    path.write_bytes(b"".join(lines))
    result = _verify(path)
    assert result.returncode == 1
    assert f"{path}:3: not a chained record" in result.stderr


def test_records_from_before_the_chain_are_counted_not_a_break(tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    path.write_bytes(b'{"id":"old1"}\n{"id":"old2"}\n')
    log = DecisionLog(path)
    anyio.run(log.append_encoded, _records(0, 2), 2)
    result = _verify(path)
    assert result.returncode == 0, result.stderr
    assert "2 older records written before the chain" in result.stdout


def _daemon_log_with_records(daemon: DaemonProcess, count: int) -> Path:
    with daemon.client() as client:
        for n in range(count):
            payload = {"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": {"command": f"echo {n}"}}
            hook(client, json.dumps(payload).encode())
    path = Path(status(daemon)["log"]["path"])  # type: ignore[index]
    wait_until(lambda: path.exists() and len(path.read_bytes().splitlines()) == count)
    wait_until(lambda: status(daemon)["log"].get("seq") == count)  # type: ignore[attr-defined]
    return path


def test_lines_cut_from_the_end_are_caught_against_the_running_daemon(daemon: DaemonProcess) -> None:
    path = _daemon_log_with_records(daemon, 3)
    assert _verify(path).returncode == 0
    path.write_bytes(b"".join(_lines(path)[:2]))  # the file alone still chains: only keycardd knows record 3
    result = _verify(path)
    assert result.returncode == 1
    assert f"{path}:3: 1 record deleted from the end (keycardd wrote record 3)" in result.stderr


def test_an_edited_last_line_is_caught_against_the_running_daemon(daemon: DaemonProcess) -> None:
    path = _daemon_log_with_records(daemon, 2)
    lines = _lines(path)
    lines[-1] = lines[-1].replace(b"echo 1", b"echo 9")
    path.write_bytes(b"".join(lines))
    result = _verify(path)
    assert result.returncode == 1
    assert f"{path}:2: edited: the last record does not match" in result.stderr
