"""Differential soundness test of the shell analysis against real bash (issue 12, "How to prove it").

Every line of tests/shell_lines.py's corpus (agents' real lines, attack lines of every class issue 12 lists, seeded
mutations) runs in real bash inside tests/bash_sandbox.py's throw-away sandbox, where every program is a logging
stub. The analysis is sound for a line when every program bash actually executed is among its programs, or it says
it cannot know: the line is unparseable (`error`), a program is dynamic, or some command runs code it could not see
(`"script"` in its unknowns). Extra programs in the analysis are fine; a missing one is a line that gets through.

`python tests/test_shell_soundness.py FILE` writes the failures, grouped by class, as Markdown to FILE;
`python tests/test_shell_soundness.py --check LINE...` judges just those lines; `--fuzz SEED N` judges N fresh
mutations and prints the failing ones, to be kept in tests/data/soundness_found.jsonl.
"""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import threading
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bash_sandbox import CWD, HOME, LineRun, SandboxError, run_lines, unavailable_reason
from shell_lines import (
    ATTACKS,
    MIN_LINES,
    PAYLOADS,
    SEED,
    attack_lines,
    corpus_lines,
    mutated_lines,
    soundness_corpus,
)

from keycardd.shell import analyze

CLASSES = ("corpus", "benign", "found", *ATTACKS, "mutation", "inline-code")


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Skip, with the reason, where the sandbox cannot run: no namespaces, no compiler, or a trial line fails."""
    reason = unavailable_reason()
    if reason is None:
        try:
            run_lines(["true"], tmp_path_factory.mktemp("sandbox-probe"), workers=1)
        except (OSError, SandboxError, subprocess.CalledProcessError) as exc:
            reason = f"the bash sandbox does not start here: {exc}"
    if reason is not None:
        pytest.skip(reason)


class Analysis(Protocol):
    """What the comparison reads of `analyze(...)`'s result (keycardd.shell.ShellAnalysis)."""

    @property
    def commands(self) -> Sequence[Any]: ...

    @property
    def error(self) -> str | None: ...


@dataclass(frozen=True)
class Reported:
    """A hand-made analysis result, for the harness's own tests and for a line analyze() crashed on."""

    commands: Sequence[Any] = ()
    error: str | None = None


@dataclass(frozen=True)
class Verdict:
    cls: str
    run: LineRun
    analysis: Analysis
    crash: str | None = None
    """analyze() must never raise; when it does, the line fails with the exception instead of a comparison."""

    @property
    def reported(self) -> frozenset[str]:
        return frozenset(command.program for command in self.analysis.commands)

    @property
    def says_unknown(self) -> bool:
        """The analysis admits it cannot list every program: unparseable, a dynamic program, or unseen code."""
        return self.analysis.error is not None or any(
            command.dynamic or "script" in getattr(command, "unknowns", ()) for command in self.analysis.commands
        )

    @property
    def missed(self) -> frozenset[str]:
        """Programs real bash executed that the analysis did not report (empty when sound)."""
        if self.crash is not None:
            return frozenset({f"<analyze raised {self.crash}>"})
        if self.says_unknown:
            return frozenset()
        return self.run.programs - self.reported


def judge(cls: str, run: LineRun) -> Verdict:
    try:
        return Verdict(cls, run, analyze(run.line, cwd=CWD, home=HOME))
    except Exception as exc:
        return Verdict(cls, run, Reported(), crash=f"{type(exc).__name__}: {exc}")


def run_corpus(workdir: Path) -> list[Verdict]:
    corpus = soundness_corpus(SEED)
    runs = run_lines([line for _, line in corpus], workdir)
    return [judge(cls, run) for (cls, _), run in zip(corpus, runs, strict=True)]


@pytest.fixture(scope="module")
def verdicts(sandbox: None, tmp_path_factory: pytest.TempPathFactory) -> list[Verdict]:
    return run_corpus(tmp_path_factory.mktemp("soundness"))


def describe(verdict: Verdict) -> str:
    return f"  {verdict.run.line!r}\n    bash ran {sorted(verdict.missed)} (analysis: {sorted(verdict.reported)})"


# ----------------------------------------------------------------------------------------------------- the corpus


def test_corpus_is_large_seeded_and_covers_every_class() -> None:
    corpus = soundness_corpus(SEED)
    assert len(corpus) >= MIN_LINES
    assert corpus == soundness_corpus(SEED), "the corpus must be reproducible"
    assert corpus != soundness_corpus(SEED + 1), "the seed must matter"
    classes = {cls for cls, _ in corpus}
    assert classes == set(CLASSES)
    assert len({line for _, line in corpus}) == len(corpus)


# ------------------------------------------------------------------------------------------------- the harness


def test_harness_sees_what_bash_executes(sandbox: None, tmp_path: Path) -> None:
    """The stubs log every exec, including forged argv[0], absolute paths and what real wrappers run; a harness
    that saw nothing would pass every line."""
    expected = {
        "rm -rf ~": {"rm"},
        "/bin/r[m] x": {"rm"},
        "hash -p /usr/bin/shred ls; ls": {"shred"},
        "exec -a git reboot": {"reboot"},
        "env -S'curl -s x'": {"env", "curl"},
        "echo 'wget x' | sh": {"sh", "wget"},
        "echo d2dldCB4 | base64 -d | bash": {"base64", "bash", "wget"},
        "find . -name '*.py' -exec shred {} \\;": {"find", "shred"},
        "timeout 5 nice -n 1 xargs -a notes.txt killall": {"timeout", "nice", "xargs", "killall"},
        "script -qc 'reboot' /dev/null": {"script", "reboot"},
        "alias x='halt'\nx": {"halt"},
        "tar czf /tmp/a.tgz notes.txt": {"tar"},  # tar's own sh -c gzip is not the line's
        "tar cf /tmp/a.tar --checkpoint=1 --checkpoint-action=exec=halt notes.txt": {"tar", "halt"},
        "git -c alias.x='!halt' x": {"git", "halt"},
        "true": set(),
    }
    runs = run_lines(list(expected), tmp_path, workers=1)
    assert {run.line: set(run.programs) for run in runs} == expected


def test_sandbox_contains_hostile_lines(sandbox: None, tmp_path: Path) -> None:
    """Hostile lines change nothing outside the sandbox: no file written, no connection made, no host process
    signalled, and a fork bomb or an endless loop ends with the line."""
    canary = tmp_path / "canary"
    canary.write_text("untouched\n")
    canary_mtime = canary.stat().st_mtime_ns
    outside = Path("/tmp") / f"keycardd-soundness-escape-{os.getpid()}"
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    accepted: list[socket.socket] = []
    listener.settimeout(0.2)

    def accept() -> None:
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    stop = threading.Event()
    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    sleeper = subprocess.Popen(["sleep", "60"])
    swappiness_file = Path("/proc/sys/vm/swappiness")
    swappiness = int(swappiness_file.read_text())
    try:
        hostile = [
            f"echo pwned > {canary}",
            f": > {canary}; echo pwned >> {outside}",
            f"cd {tmp_path} && echo pwned > canary",
            f"exec 3<>/dev/tcp/127.0.0.1/{port}; echo hi >&3",
            f"echo hi > /dev/tcp/127.0.0.1/{port}",
            f"kill -9 {sleeper.pid} {os.getpid()}; kill -9 -1",
            ":(){ :|:& };:",
            "f() { f & f & }; f; wait",
            "while :; do :; done",
            "for i in $(seq 100); do (marker; exec tail -f /dev/null) & done; wait",
            "echo pwned > /etc/keycardd-soundness; echo pwned > /usr/bin/rm; rm -rf /",
            # the real programs are in the sandbox too: they cannot reach out either
            f"/.real/usr/bin/touch {canary} {outside}; /.real/usr/bin/rm -rf --no-preserve-root / 2>/dev/null",
            f"echo {swappiness + 1} > /proc/sys/vm/swappiness",
        ]
        runs = run_lines(hostile, tmp_path / "work", workers=1, timeout=1.5)
    finally:
        stop.set()
        thread.join()
        listener.close()
    changed_swappiness = int(swappiness_file.read_text()) != swappiness
    if changed_swappiness:  # put the machine back before failing
        swappiness_file.write_text(f"{swappiness}\n")
    assert not changed_swappiness, "a line changed a kernel setting"
    assert canary.read_text() == "untouched\n"
    assert canary.stat().st_mtime_ns == canary_mtime
    assert not outside.exists()
    assert not Path("/etc/keycardd-soundness").exists()
    assert accepted == []
    assert sleeper.poll() is None, "a line signalled a process outside the sandbox"
    sleeper.kill()
    sleeper.wait()
    assert "rm" in runs[hostile.index(next(h for h in hostile if "rm -rf /" in h))].programs, "the lines did run"
    loop = runs[hostile.index("while :; do :; done")]
    assert loop.timed_out
    markers = [e for e in runs[hostile.index(next(h for h in hostile if "marker" in h))].execs if e.program == "marker"]
    assert 10 < len(markers) < 64, "RLIMIT_NPROC must cap the number of processes a line can start"


def test_harness_fails_an_unsound_analysis(sandbox: None, tmp_path: Path) -> None:
    """The comparison itself can fail: an analysis blind to one command, or one that crashes, fails the line; one
    that says it cannot analyse the line passes it."""
    [run] = run_lines(["true && shred x"], tmp_path, workers=1)
    verdict = judge("corpus", run)
    assert verdict.missed == frozenset()
    blind = [command for command in verdict.analysis.commands if command.program != "shred"]
    assert Verdict("corpus", run, Reported(commands=blind)).missed == {"shred"}
    assert Verdict("corpus", run, Reported(commands=blind, error="unparseable")).missed == frozenset()
    assert Verdict("corpus", run, Reported(), crash="ValueError: x").missed


# ------------------------------------------------------------------------------------------------ the soundness


@pytest.mark.parametrize("cls", CLASSES)
def test_every_program_bash_runs_is_in_the_analysis(cls: str, verdicts: list[Verdict]) -> None:
    lines = [v for v in verdicts if v.cls == cls]
    failures = [v for v in lines if v.missed]
    assert lines
    if failures:  # the message, not the verdicts' repr: each failing line with what bash ran and what was reported
        pytest.fail(
            f"{len(failures)} of {len(lines)} {cls} lines run programs the analysis misses:\n"
            + "\n".join(describe(v) for v in failures[:40]),
            pytrace=False,
        )


def test_interpreters_really_run_the_inline_code(verdicts: list[Verdict]) -> None:
    """The inline-code class compares something: python, awk, sed and perl really ran in the sandbox and ran each
    line's payload, and most lines are compared program by program (not passed as unseen code)."""
    lines = [v for v in verdicts if v.cls == "inline-code"]
    interpreters = {"python3", "awk", "sed", "perl", "echo", "printf", "sh"}
    silent = [v.run.line for v in lines if not v.run.programs - interpreters]
    assert not silent, f"the payload did not run: {silent[:5]}"
    compared = [v for v in lines if not v.says_unknown]
    assert len(compared) * 3 >= len(lines) * 2, f"only {len(compared)} of {len(lines)} lines were compared"


# ---------------------------------------------------------------------------------------------------- findings


def _shape(line: str) -> str:
    """The line with its payload generalised, so that findings show each failing construct once."""
    for cmd in PAYLOADS:
        line = line.replace(cmd, "CMD")
    for program in sorted({cmd.split()[0] for cmd in PAYLOADS}, key=len, reverse=True):
        line = line.replace(program, "PROG")
    return line


def findings_markdown(verdicts: list[Verdict], analyser: str) -> Iterator[str]:
    failing = [v for v in verdicts if v.missed]
    by_class: dict[str, list[Verdict]] = defaultdict(list)
    for verdict in failing:
        by_class[verdict.cls].append(verdict)
    yield "# Shell analysis soundness findings (the differential test against real bash)\n\n"
    yield f"Analyser: {analyser}. {len(failing)} of {len(verdicts)} lines run a program the analysis does not "
    yield "report, while it neither sets `error`, nor marks a program dynamic, nor puts `script` in unknowns.\n"
    yield "Each class shows every distinct failing construct once (payload generalised), shortest first.\n\n"
    yield "Reproduce: `.venv/bin/pytest -q tests/test_shell_soundness.py`; rewrite this file with "
    yield "`.venv/bin/python tests/test_shell_soundness.py FINDINGS.md`.\n"
    for cls in CLASSES:
        group = by_class.get(cls, [])
        total = sum(1 for v in verdicts if v.cls == cls)
        yield f"\n## {cls}: {len(group)} of {total} lines fail\n"
        shapes: set[str] = set()
        for verdict in sorted(group, key=lambda v: len(v.run.line)):
            if (shape := _shape(verdict.run.line)) in shapes:
                continue
            shapes.add(shape)
            yield f"\n```\n{verdict.run.line}\n```\nbash ran {sorted(verdict.missed)}; "
            yield f"analysis reported {sorted(verdict.reported)}\n"


def analyser_revision() -> str:
    """The commit the analysis comes from, and whether keycardd/shell has uncommitted changes."""
    repo = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True).stdout.strip()

    dirty = git("status", "--porcelain", "keycardd/shell", "keycardd/adapters/decision.py")
    return f"commit {git('rev-parse', '--short', 'HEAD')}" + (
        " plus uncommitted changes to keycardd/shell" if dirty else ""
    )


def fuzz_lines(seed: int, count: int) -> list[str]:
    """`count` mutations of the corpus and attack lines with another seed than the test's (not in the corpus)."""
    rng = random.Random(seed)
    seeds = [line for _, line in (*corpus_lines(), *attack_lines(rng, 2))]
    corpus = {line for _, line in soundness_corpus(SEED)}
    return [line for line in dict.fromkeys(line for _, line in mutated_lines(seeds, rng, count)) if line not in corpus]


def _main(argv: list[str]) -> int:
    """`FILE`: write the findings for the whole corpus; `--check LINE...`: judge just these lines; `--fuzz SEED N`:
    judge N fresh mutations and print the failing ones as JSON lines for tests/data/soundness_found.jsonl."""
    import tempfile

    reason = unavailable_reason()
    if reason is not None:
        print(reason, file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as scratch:
        if argv[:1] == ["--fuzz"]:  # new seeded mutations; failures print as lines for soundness_found.jsonl
            seed, count = int(argv[1]), int(argv[2])
            lines = fuzz_lines(seed, count)
            for run in run_lines(lines, Path(scratch)):
                verdict = judge("found", run)
                if verdict.missed:
                    print(json.dumps({"line": run.line, "seed": seed, "why": f"bash ran {sorted(verdict.missed)}"}))
            return 0
        if argv[:1] == ["--check"]:
            for run in run_lines(argv[1:], Path(scratch), workers=1):
                verdict = judge("check", run)
                outcome = f"MISSED {sorted(verdict.missed)}" if verdict.missed else "sound"
                unknown = " (says unknown)" if verdict.says_unknown else ""
                print(f"{run.line!r}\n  bash ran {sorted(run.programs)}; analysis {sorted(verdict.reported)}{unknown}")
                print(f"  {outcome}")
            return 0
        results = run_corpus(Path(scratch))
    Path(argv[0]).write_text("".join(findings_markdown(results, analyser_revision())))
    print(f"{sum(1 for v in results if v.missed)} of {len(results)} lines fail")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
