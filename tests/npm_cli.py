"""Installing a real agent CLI from npm into the repository's cache for end-to-end tests, or skipping with why."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

CACHE = Path(__file__).resolve().parent.parent / ".cache"


def install_npm_cli(package: str, binary: str) -> Path:
    """`.cache/<binary>/node_modules/.bin/<binary>`, installed with npm the first time; skips when that fails."""
    directory = CACHE / binary
    path = directory / "node_modules" / ".bin" / binary
    if path.exists():
        return path
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip(f"npm is not installed, so {package} cannot be installed for the end-to-end test")
    directory.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--silent", package],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if result.returncode != 0 or not path.exists():
        pytest.skip(f"npm could not install {package}: {result.stderr.strip()[-300:]}")
    return path
