"""Issue 19: the README's quick start cannot drift from the checkout.

Every program, make target and file its commands name exists in a fresh clone (or is made by the step before it),
and the README names where each binary lives. Running the commands is tests/test_newcomer_walk.py's job.
"""

from __future__ import annotations

import argparse
import re
import shlex
import tomllib
from pathlib import Path

import pytest
from readme_quick_start import README, REPO, quick_start_blocks, quick_start_section

from keycardd.cli import build_parser
from keycardd.install.shim import compiled_shim_path, recorded_daemon_path

MAKEFILE = (REPO / "Makefile").read_text(encoding="utf-8")
SCRIPTS = set(tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"])
SHELL_BUILTINS = {"echo", "export", "cd"}


def make_targets() -> set[str]:
    targets = set(re.findall(r"^([\w./-]+):", MAKEFILE, flags=re.MULTILINE))
    return targets | {
        name for line in re.findall(r"^\.PHONY:(.*)$", MAKEFILE, flags=re.MULTILINE) for name in line.split()
    }


def programs(command: str) -> list[list[str]]:
    """The words of each simple command of a pipeline (the quick start uses nothing more than `|`)."""
    words = shlex.split(command, comments=True)
    parts: list[list[str]] = [[]]
    for word in words:
        if word == "|":
            parts.append([])
        else:
            parts[-1].append(word)
    return [part for part in parts if part]


def commands() -> list[str]:
    return [line for block in quick_start_blocks() for line in block]


def test_the_quick_start_has_the_two_terminals() -> None:
    blocks = quick_start_blocks()
    assert blocks[0][0].split("#")[0].strip() == "make run"
    assert len(blocks) == 2 and len(blocks[1]) >= 5


@pytest.mark.parametrize("command", commands())
def test_every_program_target_and_file_a_command_names_exists(command: str, monkeypatch: pytest.MonkeyPatch) -> None:
    home = Path.home()
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)  # the README's paths are the defaults
    for words in programs(command):
        program, args = words[0], words[1:]
        if program == "make":
            assert set(args) <= make_targets(), f"{command}: no such make target"
        elif program.startswith(".venv/bin/"):
            # made by `make run` (the venv's console scripts): the name must be one pyproject.toml installs
            assert program.removeprefix(".venv/bin/") in SCRIPTS, f"{command}: .venv/bin has no {program}"
            if program.endswith("keycardctl"):
                assert args[0] in _keycardctl_commands(), f"{command}: keycardctl has no command {args[0]}"
        elif program.startswith("~/"):
            # made by `keycardctl install` the line before: the path must be the one it installs to
            assert Path(program.replace("~", str(home), 1)) == compiled_shim_path(), f"{command}: not the shim's path"
        else:
            assert program in SHELL_BUILTINS, f"{command}: {program} is neither in the checkout nor a shell builtin"


def _keycardctl_commands() -> set[str]:
    (subparsers,) = [action for action in build_parser()._actions if isinstance(action, argparse._SubParsersAction)]
    return set(subparsers.choices)


def test_the_readme_says_where_each_binary_lives(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    section = quick_start_section()
    home = str(Path.home())
    for name in sorted(SCRIPTS):
        assert f"`.venv/bin/{name}`" in section
    assert "`hooks/keycard-hook`" in section and "SHIM := hooks/keycard-hook" in MAKEFILE  # built by `make run`
    data = "${XDG_DATA_HOME:-~/.local/share}"
    assert f"`{data}/keycard/bin/keycard-hook`" in section
    assert str(compiled_shim_path()) == f"{home}/.local/share/keycard/bin/keycard-hook"
    assert f"`{data}/keycard/bin/keycardd`" in section
    assert str(recorded_daemon_path()) == f"{home}/.local/share/keycard/bin/keycardd"
    for path in re.findall(r"`((?:keycardd|tests|hooks|packaging)/[\w./-]+)`", section):
        assert (REPO / path).exists() or path == "hooks/keycard-hook", (
            f"the quick start names {path}, which is not here"
        )


def test_no_command_points_at_a_release_that_does_not_exist() -> None:
    """Before: `pip install 'keycardd[devzone]'` (and packaging's `pipx install keycardd`) as if on PyPI."""
    for document in (README, REPO / "packaging" / "README.md"):
        for block in re.findall(r"```sh\n(.*?)```", document.read_text(encoding="utf-8"), flags=re.DOTALL):
            assert not re.search(r"\b(pipx|uv tool|pip) install '?keycardd\b", block), f"{document}: {block}"
