"""Repeated shell lines are analysed once: the analysis of a line is a pure function of the line and where it runs.

Agents run the same lines again and again (`git status`, `npm test`, `ls`), and analysing one costs 35-150 us, more
than deciding it. `keycardd.shell.analyze` reads no files and no environment: its answer depends only on the line,
the working directory, the home directory and case folding, which are exactly the key here, so a remembered answer
is the answer. Only the analysis is remembered, never a decision: every call is still decided by the policy loaded
now (a reload changes the next answer at once). Lines the analysis refused are not kept (a line refused for taking
too long on a loaded machine is analysed again), and neither are long lines, so the cache stays a few MB at most.
"""

from __future__ import annotations

import functools

from keycardd.shell import ShellAnalysis, analyze

MAX_CACHED_LINE = 2048
"""Longer lines are analysed every time (they are rare, and this bounds the memory the cache can hold)."""
CACHED_LINES = 512


class _Refused(Exception):
    """Carries an analysis with an error out of the cached function, so that `lru_cache` does not keep it."""

    def __init__(self, analysis: ShellAnalysis) -> None:
        super().__init__(analysis.error)
        self.analysis = analysis


def analyze_line(line: str, *, cwd: str, home: str, fold_case: bool, time_limit_s: float) -> ShellAnalysis:
    """`keycardd.shell.analyze(line, ...)`, from the cache when this line was analysed in the same place before."""
    if len(line) > MAX_CACHED_LINE:
        return analyze(line, cwd=cwd, home=home, fold_case=fold_case, time_limit_s=time_limit_s)
    try:
        return _analyzed(line, cwd, home, fold_case, time_limit_s)
    except _Refused as refused:
        return refused.analysis


@functools.lru_cache(maxsize=CACHED_LINES)
def _analyzed(line: str, cwd: str, home: str, fold_case: bool, time_limit_s: float) -> ShellAnalysis:
    analysis = analyze(line, cwd=cwd, home=home, fold_case=fold_case, time_limit_s=time_limit_s)
    if analysis.error is not None:
        raise _Refused(analysis)
    return analysis


def clear() -> None:
    """Forget every remembered analysis (tests compare against fresh ones)."""
    _analyzed.cache_clear()
