"""Masking secrets out of text that is about to be logged or echoed back: tokens, keys, passwords in URLs.

The patterns are the credential formats agents actually handle (GitHub, OpenAI/Anthropic, Slack, AWS, npm, GitLab,
JWTs, bearer headers, `key=value` secrets, URL userinfo), plus long high-entropy runs as a catch-all.
"""

from __future__ import annotations

import re

MASK = "[MASKED]"

_PATTERNS = re.compile(
    r"""
    (?P<token>
        gh[pousr]_[A-Za-z0-9]{20,}
      | github_pat_[A-Za-z0-9_]{20,}
      | sk-[A-Za-z0-9_\-]{16,}
      | xox[abposr]-[A-Za-z0-9\-]{10,}
      | (?:AKIA|ASIA)[0-9A-Z]{16}
      | npm_[A-Za-z0-9]{30,}
      | glpat-[A-Za-z0-9_\-]{20,}
      | eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}
      | [A-Za-z0-9+_\-]{40,}={0,2}
    )
    | (?P<bearer>(?i:bearer|token|basic)\s+)[A-Za-z0-9._~+/=\-]{8,}
    | (?P<assign>(?i:[A-Za-z0-9_]*(?:password|passwd|secret|token|api[_-]?key|access[_-]?key|auth)[A-Za-z0-9_]*)
                 \s*[=:]\s*)(?P<quote>["']?)(?:(?i:bearer|basic)\s+)?[^\s"'&]{4,}
    | (?P<userinfo>://[^/\s:@]+:)[^/\s@]+(?=@)
    """,
    re.VERBOSE,
)


def _replace(match: re.Match[str]) -> str:
    for prefix in ("bearer", "userinfo"):
        if match.group(prefix):
            return match.group(prefix) + MASK
    if match.group("assign"):
        return match.group("assign") + match.group("quote") + MASK
    return MASK


def mask(text: str) -> str:
    """Return `text` with every token-like substring replaced by `[MASKED]`."""
    return _PATTERNS.sub(_replace, text)
