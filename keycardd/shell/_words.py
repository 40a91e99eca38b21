"""Turning tree-sitter word nodes into the strings the shell would pass, and knowing when it cannot be known."""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass

from tree_sitter import Node

_ANSI_C_ESCAPES = re.compile(r"\\(x[0-9A-Fa-f]{1,2}|u[0-9A-Fa-f]{1,4}|U[0-9A-Fa-f]{1,8}|[0-7]{1,3}|c.|.)", re.DOTALL)
_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "e": "\x1b", "E": "\x1b", "f": "\f", "n": "\n", "r": "\r", "t": "\t",
                   "v": "\v", "\\": "\\", "'": "'", '"': '"', "?": "?"}  # fmt: skip
_EXPANSIONS = frozenset({"simple_expansion", "expansion", "arithmetic_expansion", "command_substitution",
                         "process_substitution", "brace_expression"})  # fmt: skip
_SUBSTITUTIONS = frozenset({"command_substitution", "process_substitution"})


@dataclass(frozen=True, slots=True)
class Word:
    """A word's value after quote removal; `dynamic` when part of it is only known when the line runs."""

    text: str
    dynamic: bool = False


SubstitutionVisitor = Callable[[Node], None]
"""Called for every command or process substitution inside a word: its commands run too."""


def resolve(node: Node, visit: SubstitutionVisitor) -> Word:
    """Resolve a word-like node (word, string, raw_string, concatenation, expansion, ...)."""
    kind = node.type
    if kind == "word":
        return Word(_unescape_word(node_text(node)))
    if kind == "raw_string":
        return Word(node_text(node)[1:-1])
    if kind == "ansi_c_string":
        return Word(_ansi_c(node_text(node)[2:-1]))
    if kind == "number":
        return Word(node_text(node))
    if kind == "string":
        return _join([resolve_string_part(child, visit) for child in node.named_children])
    if kind == "concatenation":
        return _join([resolve(child, visit) for child in node.children])
    if kind in _EXPANSIONS:
        _visit_substitutions(node, visit)
        return Word(node_text(node), dynamic=True)
    if kind == "translated_string":  # $"..." behaves like "..."
        return _join([resolve_string_part(child, visit) for child in node.named_children])
    _visit_substitutions(node, visit)
    return Word(node_text(node), dynamic=node.named_child_count > 0)


def resolve_string_part(node: Node, visit: SubstitutionVisitor) -> Word:
    if node.type == "string_content":
        return Word(_unescape_double_quoted(node_text(node)))
    return resolve(node, visit)


def _visit_substitutions(node: Node, visit: SubstitutionVisitor) -> None:
    if node.type in _SUBSTITUTIONS:
        visit(node)
        return
    for child in node.children:
        _visit_substitutions(child, visit)


def _join(parts: list[Word]) -> Word:
    return Word("".join(part.text for part in parts), dynamic=any(part.dynamic for part in parts))


SOURCE: ContextVar[bytes] = ContextVar("SOURCE", default=b"")
"""The real bytes of the line being walked. The parser sees an ASCII shadow of them (see `_analysis.ascii_shadow`)
with identical byte offsets, so text is always sliced from here, never from the nodes."""


def node_text(node: Node) -> str:
    return SOURCE.get()[node.start_byte : node.end_byte].decode("utf-8", "surrogatepass")


def _unescape_word(text: str) -> str:
    """Outside quotes a backslash quotes the next character (`\\rm` is `rm`); a backslash-newline disappears."""
    out = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            if text[index + 1] != "\n":
                out.append(text[index + 1])
            index += 2
            continue
        out.append(char)
        index += 1
    return "".join(out)


def _unescape_double_quoted(text: str) -> str:
    """Inside double quotes a backslash only quotes `$`, backquote, `"`, `\\` and newline."""
    return re.sub(r'\\([$`"\\\n])', lambda m: "" if m[1] == "\n" else m[1], text)


def _ansi_c(body: str) -> str:
    def replace(match: re.Match[str]) -> str:
        escape = match[1]
        head = escape[0]
        if head in "xuU":
            return chr(min(int(escape[1:], 16), 0x10FFFF))
        if head.isdigit():
            return chr(int(escape, 8))
        if head == "c":
            return chr(ord(escape[1]) & 0x1F)
        return _SIMPLE_ESCAPES.get(head, "\\" + head)

    try:
        return _ANSI_C_ESCAPES.sub(replace, body)
    except (ValueError, OverflowError):
        return codecs.decode(body, "unicode_escape", "replace")
