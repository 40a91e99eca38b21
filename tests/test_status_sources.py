"""`keycardctl status` shows each policy source's own sha256 beside the set's, as `sha256sum FILE` prints it."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from conftest import DaemonProcess

POLICY = (
    b'@id("allow-ls")\r\npermit (principal, action, resource)\r\n'
    b'when { context has command && context.command == "ls" };\r\n'
)


def keycardctl(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "keycardd.cli", *args], capture_output=True, text=True, env=env, timeout=60, check=True
    )


def test_status_shows_each_sources_sha256_as_sha256sum_prints_it(
    start_daemon: Callable[..., DaemonProcess], tmp_path: Path
) -> None:
    policy = tmp_path / "crlf.cedar"
    policy.write_bytes(POLICY)  # CRLF line ends: a digest of newline-translated text would differ from sha256sum's
    daemon = start_daemon(env={"KEYCARD_POLICY_FILE": str(policy)})
    expected = hashlib.sha256(POLICY).hexdigest()

    document = json.loads(keycardctl("status", "--json", env=daemon.env).stdout)["policy"]
    assert document["source_sha256"] == {str(policy): expected}
    assert document["sha256"] != expected, "the set's digest stays what it was: it also covers the names"
    lines = [line.strip() for line in keycardctl("status", env=daemon.env).stdout.splitlines()]
    assert f"{expected}  {policy}" in lines  # the line `sha256sum FILE` prints


def test_the_embedded_default_has_its_digest_too(daemon: DaemonProcess) -> None:
    document = json.loads(keycardctl("status", "--json", env=daemon.env).stdout)["policy"]
    assert set(document["source_sha256"]) == {"embedded:default"}
    assert len(document["source_sha256"]["embedded:default"]) == 64
