"""The decision log's file writes: every batch lands whole, after the first as well as in it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from keycardd.decision_log import DecisionLog


@pytest.mark.anyio
async def test_every_batch_is_appended_not_only_the_first(tmp_path: Path) -> None:
    log = DecisionLog(tmp_path / "decisions.jsonl")
    for index in range(3):
        await log.append_encoded(b'{"n":%d}\n{"m":%d}\n' % (index, index), 2)
    assert (tmp_path / "decisions.jsonl").read_bytes().count(b"\n") == 6
    assert (log.written, log.dropped) == (6, 0)


@pytest.mark.anyio
async def test_a_line_cut_off_by_a_crash_is_not_merged_with_the_next_batch(tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    path.write_bytes(b'{"whole":1}\n{"cut')
    log = DecisionLog(path)
    await log.append_encoded(b'{"next":2}\n', 1)
    last = json.loads(path.read_bytes().splitlines()[-1])  # a whole record of its own, chained by the writer
    assert last["next"] == 2 and "whole" not in last
