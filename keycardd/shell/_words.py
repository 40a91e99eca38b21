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
_SUBSTITUTIONS = frozenset({"command_substitution", "process_substitution"})
_UNQUOTED_GLOB = re.compile(r"(?<!\\)(?:\\\\)*(?:[*?]|\[.*\])", re.DOTALL)
_BRACE = re.compile(r"\{[^{}]*(?:,|\.\.)[^{}]*\}")
_PLAIN_EXPANSION = re.compile(r"^\$\{?([A-Za-z_][A-Za-z0-9_]*|[0-9])\}?$")
_PROMPT_EXPANSION = re.compile(r"@P\}$")


@dataclass(frozen=True, slots=True)
class Word:
    """A word's value after quote removal; `dynamic` when part of it is only known when the line runs."""

    text: str
    dynamic: bool = False
    glob: bool = False
    """An unquoted `*`, `?` or `[` makes the word a pattern the shell expands against the file system."""


class Env:
    """What resolving a word needs: a callback for nested commands and the values known before the line runs."""

    def __init__(self, visit: Callable[[Node], None], home: str, lookup: Callable[[str, int], str | None]) -> None:
        self.visit = visit
        """Called for every command, process substitution or statement nested in a word: its commands run too."""
        self.home = home
        self.lookup = lookup
        """The static value of a variable at a byte offset of the line, or None when only known at run time."""
        self.prompt_expansion = False
        """Set when a `${x@P}` expansion was seen: bash runs the value's command substitutions."""


def resolve(node: Node, env: Env) -> Word:
    """Resolve a word-like node (word, string, raw_string, concatenation, expansion, ...)."""
    kind = node.type
    if kind == "word":
        return _plain_word(node_text(node), env, first=True)
    if kind == "concatenation":
        parts = []
        for index, child in enumerate(node.children):
            if child.type == "word":
                parts.append(_plain_word(node_text(child), env, first=index == 0))
            else:
                parts.append(resolve(child, env))
        word = _join(parts)
        unquoted = "".join(node_text(child) for child in node.children if child.type == "word")
        glob = word.glob or bool(_UNQUOTED_GLOB.search(unquoted))  # /bin/r[m] arrives as four word nodes
        if _BRACE.search(unquoted):  # {rm,-rf,/} expands to three words
            return Word(word.text, dynamic=True, glob=glob)
        return Word(word.text, word.dynamic, glob)
    if kind == "raw_string":
        return Word(node_text(node)[1:-1])
    if kind == "ansi_c_string":
        return Word(_ansi_c(node_text(node)[2:-1]))
    if kind == "number":
        return Word(node_text(node))
    if kind == "string":
        return _join(_string_parts(node, env))
    if kind == "translated_string":  # $"..." is "..." (a `$` token, then a string)
        return _join([resolve(child, env) for child in node.named_children])
    if kind in ("simple_expansion", "expansion"):
        return _expansion(node, env)
    if kind in _SUBSTITUTIONS:
        env.visit(node)
        text = node_text(node)
        if text in ("$(pwd)", "`pwd`"):  # the working directory, as `$PWD` is
            value = env.lookup("PWD", node.start_byte)
            if value is not None:
                return Word(value)
        return Word(text, dynamic=True)
    visit_nested(node, env.visit)
    return Word(node_text(node), dynamic=True)


def _string_parts(node: Node, env: Env) -> list[Word]:
    """A double-quoted string's parts, with the text tree-sitter leaves between its nodes (newlines, a lone `$`)."""
    source = SOURCE.get()
    children = node.children
    opening = next((index for index, child in enumerate(children) if child.type in ('"', '$"')), -1)
    children = children[opening:] if opening >= 0 else children  # `$"..."`: tree-sitter may give `$` on its own
    inner = [child for child in children[1:] if child.type not in ('"', '$"')] if opening >= 0 else children
    start = children[0].end_byte if opening >= 0 else node.start_byte
    end = children[-1].start_byte if len(children) > 1 and children[-1].type == '"' else node.end_byte
    parts: list[Word] = []
    position = start
    for child in inner:
        if child.start_byte > position:
            gap = source[position : child.start_byte].decode("utf-8", "surrogatepass")
            parts.append(Word(_unescape_double_quoted(gap)))
        parts.append(_string_part(child, env) if child.is_named else Word(_unescape_double_quoted(node_text(child))))
        position = max(position, child.end_byte)
    if end > position:
        parts.append(Word(_unescape_double_quoted(source[position:end].decode("utf-8", "surrogatepass"))))
    return parts


def _string_part(node: Node, env: Env) -> Word:
    if node.type == "string_content":
        return Word(_unescape_double_quoted(node_text(node)))
    word = resolve(node, env)
    return Word(word.text, word.dynamic)  # globs do not expand inside double quotes


def _plain_word(text: str, env: Env, *, first: bool) -> Word:
    glob = bool(_UNQUOTED_GLOB.search(text))
    if _BRACE.search(text):
        return Word(_unescape_word(text), dynamic=True, glob=glob)
    return Word(_unescape_word(text), glob=glob)  # `~` is kept as spelt: paths resolve it canonically


def _expansion(node: Node, env: Env) -> Word:
    visit_nested(node, env.visit)
    text = node_text(node)
    if node.type == "expansion" and _PROMPT_EXPANSION.search(text):
        env.prompt_expansion = True
    match = _PLAIN_EXPANSION.match(text)
    if match is not None and (node.type == "simple_expansion" or text.startswith("${")):
        value = env.lookup(match[1], node.start_byte)
        if value is not None:
            return Word(value)
    return Word(text, dynamic=True)


def visit_nested(node: Node, visit: Callable[[Node], None]) -> None:
    """Hand every command substitution, process substitution or statement inside `node` to `visit`."""
    stack = list(reversed(node.children))
    while stack:
        child = stack.pop()
        if child.type in _SUBSTITUTIONS or child.type in STATEMENTS:
            visit(child)
        else:
            stack.extend(reversed(child.children))


STATEMENTS = frozenset({"command", "pipeline", "list", "redirected_statement", "subshell", "compound_statement",
                        "if_statement", "while_statement", "for_statement", "c_style_for_statement", "case_statement",
                        "function_definition", "negated_command", "declaration_command", "unset_command",
                        "test_command", "variable_assignments"})  # fmt: skip
"""Node types that are statements: wherever they appear (even inside a heredoc redirect), their commands run."""


def _join(parts: list[Word]) -> Word:
    return Word(
        "".join(part.text for part in parts),
        dynamic=any(part.dynamic for part in parts),
        glob=any(part.glob for part in parts),
    )


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


def unescape_backquoted(text: str) -> str:
    """Inside backquotes a backslash before `$`, backquote or `\\` is removed before the text is parsed again."""
    return re.sub(r"\\([$`\\])", r"\1", text)


def ansi_c(body: str) -> str:
    """The value of `$'...'` (also `echo -e` and `printf` escapes, which are close enough to over-approximate)."""
    return _ansi_c(body)


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
