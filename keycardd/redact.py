"""Masking secrets out of text that is about to be logged or echoed back: tokens, keys, passwords in URLs.

The patterns are the credential formats agents actually handle (GitHub, OpenAI/Anthropic, Slack, AWS, npm, GitLab,
Google, Stripe, JWTs, bearer headers, cookies, `key=value` secrets, URL userinfo and signed-URL query values), the
command-line forms that carry a password (`mysql -pPASS`, `curl -u user:PASS`, `docker login -p PASS`,
`sshpass -p PASS`, `--password PASS`), plus long high-entropy runs as a catch-all.
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
      | (?:sk|rk|pk)_(?:live|test)_[0-9A-Za-z]{10,}
      | AIza[0-9A-Za-z_\-]{35}
      | xox[abposr]-[A-Za-z0-9\-]{10,}
      | (?:AKIA|ASIA)[0-9A-Z]{16}
      | npm_[A-Za-z0-9]{30,}
      | glpat-[A-Za-z0-9_\-]{20,}
      | eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}
      | [A-Za-z0-9+_\-]{40,}={0,2}
    )
    | (?P<aws>(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{40}(?![A-Za-z0-9+/=]))
    | (?P<query>[?&](?i:key|sig|signature|x-amz-signature|x-amz-security-token|x-goog-signature|access_token
                       |client_secret|code|password|pwd|secret|token)=)[^&\s\#"']+
    | (?P<cookie>(?i:(?:set-)?cookie)\s*:\s*)[^"'\n]+
    | (?P<bearer>(?i:bearer|token|basic)\s+)[A-Za-z0-9._~+/=\-]{8,}
    | (?P<assign>(?i:[A-Za-z0-9_]*(?:password|passwd|secret|token|api[_-]?key|access[_-]?key|auth)[A-Za-z0-9_]*)
                 \s*[=:]\s*)(?P<quote>["']?)(?:(?i:bearer|basic)\s+)?[^\s"'&]{4,}
    | (?P<userinfo>://[^/\s:@]+:)[^/\s@]+(?=@)
    | (?P<mysql>\b(?:mysql|mysqldump|mysqladmin|mariadb|mariadb-dump)\b[^\n|;&]*?\s-p)[^\s"']+
    | (?P<curluser>\bcurl\b[^\n|;&]*?\s(?:-u|--user)[\s=]*[^\s:"']*:)[^\s"']+
    | (?P<pwflag>\b(?:sshpass|(?:docker|podman|nerdctl|buildah|helm\s+registry)\s+login)\b[^\n|;&]*?
                 \s(?:-p|--password)(?:[\s=]+|(?=[^\s\-])))[^\s"']+
    | (?P<pwopt>--password\s+)(?!-)[^\s"']+
    """,
    re.VERBOSE,
)
_PREFIXED = ("bearer", "userinfo", "query", "cookie", "pwopt")
_COMMAND_PREFIXED = ("mysql", "curluser", "pwflag")
"""Groups whose prefix spans part of a command line: the prefix may hold other secrets, so it is masked too."""


def _replace(match: re.Match[str]) -> str:
    for prefix in _PREFIXED:
        if match.group(prefix):
            return match.group(prefix) + MASK
    for prefix in _COMMAND_PREFIXED:
        if match.group(prefix):
            return mask(match.group(prefix)) + MASK
    if match.group("assign"):
        return match.group("assign") + match.group("quote") + MASK
    if match.group("aws") and not _looks_like_aws_secret(match.group("aws")):
        return match.group("aws")
    return MASK


def _looks_like_aws_secret(text: str) -> bool:
    """40 base64 characters with a `/` or `+` (the catch-all takes those without) and mixed case and digits, which
    a path or a word of that exact length rarely has."""
    return (
        ("/" in text or "+" in text)
        and not text.startswith("/")
        and "//" not in text
        and any(c.isupper() for c in text)
        and any(c.islower() for c in text)
        and any(c.isdigit() for c in text)
    )


CLEAN_CACHE_SIZE = 4096
CLEAN_CACHE_MAX_LENGTH = 1024
_clean: dict[str, None] = {}
"""Texts `mask` found nothing in (a working directory, a policy's reason, a file path, each logged again and again):
the pattern costs about 0.45 us a character, and a clean text is its own answer. Only clean texts are kept, so the
cache never holds a secret; when full it is emptied and filled again (bounded, no bookkeeping per call)."""


def mask(text: str) -> str:
    """Return `text` with every token-like substring replaced by `[MASKED]`."""
    if text in _clean:
        return text
    masked = _PATTERNS.sub(_replace, text)
    if masked == text and len(text) <= CLEAN_CACHE_MAX_LENGTH:
        if len(_clean) >= CLEAN_CACHE_SIZE:
            _clean.clear()
        _clean[text] = None
    return masked
