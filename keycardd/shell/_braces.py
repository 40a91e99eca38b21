"""Bash's brace expansion (`{a,b}`, `{1..10..2}`, `{a..e}`), done statically and exactly as bash 5 does it.

A port of bash's braces.c (brace_expand, expand_amble, brace_gobbler, expand_seqterm, mkseq) over a word given as
tokens: each character of the word's unquoted text as spelt (backslashes kept, as bash sees it), and an integer for
each part bash's brace expansion passes over whole (a quoted string, `$x`, `${...}`, `$(...)`, a backquote string).
`cat ~/.ssh/id_rsa{,}` is two reads of `~/.ssh/id_rsa`; `{r,}m -rf ~` runs `rm`. The result is checked against real
bash word by word in tests/test_shell_braces.py.

Bounded: past `MAX_WORDS` resulting words (or a character sequence that produces a backslash or backquote, which
bash reads again as quoting) the answer is None, "unknown", never a guess.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

Token = str | int
"""A character of unquoted word text, or the index of a part brace expansion does not look into."""

MAX_WORDS = 256
"""More resulting words than this make the word unknown (`{1..100000}` names no path a policy could check)."""

_INT = re.compile(r"[ \t\n]*([+-]?[0-9]+)[ \t\n]*")
_INTMAX = 2**63 - 1
_INT_MAX = 2**31 - 1
_WHITESPACE = frozenset(" \t\n")


class TooManyWordsError(Exception):
    """The expansion would exceed `MAX_WORDS` words, or cannot be known statically."""


def expand_braces(tokens: Sequence[Token], spelt: Sequence[str], limit: int = MAX_WORDS) -> list[list[Token]] | None:
    """The words bash's brace expansion makes of `tokens`, in order; None when more than `limit` or unknowable.

    `spelt[n]` is the source text of the part token `n` stands for: bash looks for a `,` in it (and only there)
    when deciding whether `{...}` is a sequence expression.
    """
    try:
        return _brace_expand(list(tokens), limit, spelt)
    except TooManyWordsError:
        return None


def _brace_expand(text: list[Token], limit: int, spelt: Sequence[str]) -> list[list[Token]]:
    i = 0
    c: Token | None
    while True:
        i, c = _gobble(text, i, "{")
        if c is None:
            break
        _, closing = _gobble(text, i + 1, "}")
        if closing is not None:
            break
        i += 1
    preamble = text[:i]
    if c != "{":
        return [preamble]
    i += 1
    start = i
    i, c = _gobble(text, i, "}")
    if c is None:
        return [text]
    amble = text[start:i]
    tack: list[list[Token]] | None
    if not _has_separator(amble, spelt):
        tack = _sequence(amble, limit)
        if tack is None:
            if i + 1 >= len(text):
                return [text]
            tack = [text[start - 1 : i + 1]]  # not a sequence: the braces stay as text, the rest is expanded
    else:
        tack = _expand_amble(amble, limit, spelt)
    result = _concat([preamble], tack, limit)
    postamble = text[i + 1 :]
    if postamble:
        result = _concat(result, _brace_expand(postamble, limit, spelt), limit)
    return result


def _has_separator(amble: list[Token], spelt: Sequence[str]) -> bool:
    """Whether the amble's text as spelt holds a `,` (a backslash hides the next character; quotes do not)."""
    return has_unescaped("".join(token if isinstance(token, str) else spelt[token] for token in amble), ",")


def has_unescaped(text: str, character: str) -> bool:
    """Whether `text` holds `character` not hidden by a backslash (which hides the character after it)."""
    index = 0
    while index < len(text):
        if text[index] == "\\":
            index += 2
            continue
        if text[index] == character:
            return True
        index += 1
    return False


def _expand_amble(text: list[Token], limit: int, spelt: Sequence[str]) -> list[list[Token]]:
    result: list[list[Token]] = []
    start = i = 0
    while True:
        i, c = _gobble(text, i, ",")
        result.extend(_brace_expand(text[start:i], limit, spelt))
        if len(result) > limit:
            raise TooManyWordsError
        if c is None:
            return result
        i += 1
        start = i


def _concat(first: list[list[Token]], second: list[list[Token]], limit: int) -> list[list[Token]]:
    if len(first) * len(second) > limit:
        raise TooManyWordsError
    return [a + b for a in first for b in second]


def _gobble(text: list[Token], index: int, satisfy: str) -> tuple[int, Token | None]:
    """bash's brace_gobbler: the index of the first `satisfy` outside quotes, escapes, `${...}` and inner braces.

    Quoted strings and substitutions arrive as single integer tokens, so only backslashes and `${` (which the
    word's own text never holds unparsed, but a brace sequence's characters might) need skipping here.
    """
    level = 0
    commas = 0 if satisfy == "}" else 1
    pass_next = False
    i = index
    while i < len(text):
        c = text[i]
        if pass_next:
            pass_next = False
            i += 1
            continue
        if c == "\\":
            pass_next = True
            i += 1
            continue
        if c == "$" and i + 1 < len(text) and text[i + 1] == "{":
            pass_next = True
            i += 1
            level += 1
            continue
        if c == satisfy and level == 0 and commas > 0:
            if c == "{" and (i == 0 or _blank(text[i - 1])) and (_blank_at(text, i + 1) or _at(text, i + 1) == "}"):
                i += 1
                continue
            return i, c
        if c == "{":
            level += 1
        elif c == "}" and level:
            level -= 1
        elif satisfy == "}" and level == 0 and (c == "," or (c == "." and _sequence_dots(text, i))):
            commas += 1  # a `,` or a `..` (not right before the `}`) makes `{...}` an expansion
        i += 1
    return i, None


def _sequence_dots(text: list[Token], index: int) -> bool:
    return _at(text, index + 1) == "." and _at(text, index + 2) != "}"


def _at(text: list[Token], index: int) -> Token | None:
    return text[index] if index < len(text) else None


def _blank(token: Token) -> bool:
    return isinstance(token, str) and token in _WHITESPACE


def _blank_at(text: list[Token], index: int) -> bool:
    return index >= len(text) or _blank(text[index])


def _sequence(amble: list[Token], limit: int) -> list[list[Token]] | None:
    """bash's expand_seqterm: `1..5`, `05..1..2`, `a..e`; None when `amble` is not a sequence (kept as text)."""
    if any(not isinstance(token, str) for token in amble):
        return None
    text = "".join(str(token) for token in amble)
    lhs, dots, rhs = text.partition("..")
    if not dots or not lhs or not rhs:
        return None
    lhs_match = _INT.fullmatch(lhs)
    left: int | str | None = None
    if lhs_match is not None and -_INTMAX - 1 <= int(lhs_match[1]) <= _INTMAX:
        left = int(lhs_match[1])
    elif len(lhs) == 1 and lhs.isascii() and lhs.isalpha():
        left = lhs
    number = re.match(r"[+-]?[0-9]+", rhs)
    right: int | str
    if number is not None:
        right, rest = int(number[0]), rhs[number.end() :]
        if not -_INTMAX - 1 <= right <= _INTMAX or (rest and rest[0] != "."):
            return None
    elif rhs[0].isascii() and rhs[0].isalpha() and (len(rhs) == 1 or rhs[1] == "."):
        right, rest = rhs[0], rhs[1:]
    else:
        return None
    increment = 1
    if rest.startswith("..") and len(rest) > 2:
        step = re.match(r"[ \t\n]*[+-]?[0-9]+", rest[2:])
        if step is None or not -_INTMAX - 1 <= int(step[0]) <= _INTMAX:
            return None
        increment, rest = int(step[0]), rest[2 + step.end() :]
    if rest or left is None or type(left) is not type(right):
        return None
    if isinstance(left, str) and isinstance(right, str):
        words = _steps(ord(left), ord(right), increment, limit)
        chars = [chr(value) for value in words]
        if any(char in "\\`" for char in chars):
            raise TooManyWordsError  # bash reads these again as quoting: not worth modelling
        return [[char] for char in chars]
    assert isinstance(left, int) and isinstance(right, int)
    rhs_text = rhs[: number.end()] if number is not None else ""
    width = _width(lhs, rhs_text)
    values = _steps(left, right, increment, limit)
    if width:
        return [list(_zero_padded(value, width)) for value in values]
    return [list(str(value)) for value in values]


def _steps(start: int, end: int, increment: int, limit: int) -> list[int]:
    """mkseq's values, or TooManyWordsError past `limit` (bash would make them, or fail: either way not static)."""
    increment = increment or 1
    if (start > end and increment > 0) or (start < end and increment < 0):
        increment = -increment
    if abs(end - start) // abs(increment) + 1 > limit:
        raise TooManyWordsError
    values = []
    value = start
    while True:
        values.append(value)
        value += increment
        if (increment < 0 and value < end) or (increment > 0 and value > end):
            return values


def _width(lhs: str, rhs: str) -> int:
    """Zero padding, as expand_seqterm decides it from how each end is spelt (`01`, `-05`)."""
    width = 0
    padded = False
    for spelt in (lhs, rhs):
        if (len(spelt) > 1 and spelt[0] == "0") or (len(spelt) > 2 and spelt[:2] == "-0"):
            padded = True
            width = max(width, len(spelt))
    if not padded:
        return 0
    return max(width, len(lhs), len(rhs))


def _zero_padded(value: int, width: int) -> str:
    """printf("%0*d", width, (int)value): C's truncation to a 32-bit int included."""
    truncated = (value + 2**31) % 2**32 - 2**31
    assert -_INT_MAX - 1 <= truncated <= _INT_MAX
    return f"{truncated:0{width}d}"
