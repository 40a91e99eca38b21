"""Turning tree-sitter word nodes into the strings the shell would pass, and knowing when it cannot be known."""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field, replace

from tree_sitter import Node

from keycardd.shell._braces import Token, expand_braces

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
    quoted_tilde: bool = False
    """The word starts with a `~` bash does not expand (`'~'`, `\\~`, `"~"/x`): a file named `~`, not the home."""


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
        self.default_ifs = True
        """IFS is bash's default (space, tab, newline): unquoted static expansions are split at those."""
        self.substitution_output: Callable[[Node], str | None] = lambda _node: None
        """What a command substitution prints, when the line shows it (`$(echo ~/.s)`); None when unknown."""


def resolve(node: Node, env: Env) -> Word:
    """Resolve a word-like node (word, string, raw_string, concatenation, expansion, ...)."""
    kind = node.type
    if kind == "word":
        return _plain_word(node_text(node), env, first=True)
    if kind == "concatenation":
        parts = []
        children = node.children
        for index, child in enumerate(children):
            if child.type == "word":
                parts.append(_plain_word(node_text(child), env, first=index == 0))
            elif child.type == "$" and index + 1 < len(children) and children[index + 1].type == "string":
                continue  # `en$""v`: the `$` of a `$"..."` translated string, which the next node is; bash drops it
            else:
                parts.append(resolve(child, env))
        word = replace(_join(parts), quoted_tilde=bool(parts) and parts[0].quoted_tilde)
        unquoted = "".join(node_text(child) for child in node.children if child.type == "word")
        glob = word.glob or bool(_UNQUOTED_GLOB.search(unquoted))  # /bin/r[m] arrives as four word nodes
        if _BRACE.search(unquoted):  # {rm,-rf,/} expands to three words
            return Word(word.text, dynamic=True, glob=glob)
        return Word(word.text, word.dynamic, glob, word.quoted_tilde)
    if kind == "raw_string":
        return _quoted(node_text(node)[1:-1])
    if kind == "ansi_c_string":
        return _quoted(_ansi_c(node_text(node)[2:-1]))
    if kind == "number":
        return Word(node_text(node))
    if kind == "string":
        return replace(_join(_string_parts(node, env)), quoted_tilde=_literal_tilde(node))
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
        output = env.substitution_output(node) if kind == "command_substitution" else None
        if output is not None:
            return Word(output.rstrip("\n"))  # bash drops the trailing newlines
        return Word(text, dynamic=True)
    visit_nested(node, env.visit)
    return Word(node_text(node), dynamic=True)


_PARTS = frozenset({"string", "raw_string", "ansi_c_string", "translated_string", "simple_expansion", "expansion",
                    "command_substitution", "process_substitution", "arithmetic_expansion"})  # fmt: skip
"""Parts of a word that brace expansion passes over whole (the rest is unquoted text, read character by character)."""
_QUOTED = frozenset({"string", "raw_string", "ansi_c_string", "translated_string"})
_SPLIT = frozenset({"simple_expansion", "expansion", "command_substitution"})
"""Unquoted parts whose static value bash splits into fields."""
_IFS_WHITESPACE = re.compile(r"[ \t\n]+")
_LEFT_UNPARSED = re.compile(r"['\"`]|[$<>]\(")
"""Text tree-sitter left in a plain word that bash's brace expansion would read as quoting or a substitution."""
_GLOB_CHARS = re.compile(r"[*?\[]")
_BRACE_SENSITIVE = re.compile(r"[{}'\"`$\\]")
_NAME_CHAR = re.compile(r"[A-Za-z0-9_]")
_MAX_BRACES = 16
_AFTER_LONE_DOLLAR = frozenset({None, "/", ".", ",", "}", "=", ":", "\\"})
"""What may follow a literal `$` without making it an expansion."""


def resolve_fields(node: Node, env: Env, *, braces: bool) -> list[Word]:
    """The arguments bash makes of one word of a command: brace expansion, expansions, then field splitting.

    `{a,b}`, `{1..3}` and unquoted static expansions with blanks (`cat${IFS}$HOME/.ssh/id_rsa`) become their
    words, an unquoted empty expansion none; `braces` is False where brace expansion is off or the shell is not
    bash (then a brace word is only known at run time, as `resolve` reports it). What cannot be split exactly
    (more than `_braces.MAX_WORDS` words, a changed IFS) is one dynamic word.
    """
    children = node.children if node.type == "concatenation" else [node]
    tokens: list[Token] = []
    parts: list[Node] = []
    unmodelled = False
    for index, child in enumerate(children):
        kind = child.type
        if kind == "$" and index + 1 < len(children) and children[index + 1].type == "string":
            continue  # `en$""v`: the `$` of a `$"..."` translated string
        if kind in ("word", "number", "brace_expression"):
            text = node_text(child)
            unmodelled = unmodelled or bool(_LEFT_UNPARSED.search(_unescape_pairs(text)))
            tokens.extend(text)
        elif kind in _PARTS:
            tokens.append(len(parts))
            parts.append(child)
        else:
            unmodelled = True
    words = [tokens]
    if braces and tokens.count("{") > _MAX_BRACES:
        return [_unknown(node, env)]  # bash's matching is quadratic in nesting: not worth following that far
    if braces and "{" in tokens:
        spelt = [node_text(part) for part in parts]
        if unmodelled or _reads_into_expansion(parts, spelt):
            return [_unknown(node, env)]  # text bash reads differently from tree-sitter: not modelled
        expanded = expand_braces(tokens, spelt)
        if expanded is None or any(_glued(word, parts, spelt) for word in expanded):
            return [_unknown(node, env)]
        words = expanded
    elif unmodelled or "{" in tokens:  # braces off: read whole, as `resolve` does (`{a,b}` is only known at run time)
        whole = resolve(node, env)
        if any(part.type in _SPLIT for part in parts) and _IFS_WHITESPACE.search(whole.text):
            return [Word(whole.text, dynamic=True, glob=whole.glob)]  # bash would split it: where is not modelled
        return [whole]
    values = [resolve(part, env) for part in parts]  # each part once: its nested commands are visited once
    fields: list[Word] = []
    for word in words:
        fields.extend(_fields(word, parts, values, env))
    return fields


def _reads_into_expansion(parts: list[Node], spelt: list[str]) -> bool:
    """`${...}` with braces or quotes inside: bash's brace matching reads into it, differently from tree-sitter."""
    return any(p.type == "expansion" and _BRACE_SENSITIVE.search(t[2:-1]) for p, t in zip(parts, spelt, strict=True))


def _glued(word: list[Token], parts: list[Node], spelt: list[str]) -> bool:
    """Whether the braces' removal joined a `$` to what now follows it: `$x{a,b}` is `$xa $xb` (other variables),
    `{$,x}y` is `$y`."""
    for index, current in enumerate(word):
        following = word[index + 1] if index + 1 < len(word) else None
        if current == "$" and (index == 0 or word[index - 1] != "\\") and following not in _AFTER_LONE_DOLLAR:
            return True
        named = isinstance(current, int) and parts[current].type == "simple_expansion"
        longer = named and _NAME_CHAR.match(spelt[int(current)][-1]) is not None
        if longer and isinstance(following, str) and _NAME_CHAR.match(following):
            return True  # `$x` followed by `a`: now `$xa`
    return False


def _unknown(node: Node, env: Env) -> Word:
    word = resolve(node, env)
    return Word(word.text, dynamic=True, glob=word.glob)


def _unescape_pairs(text: str) -> str:
    """`text` without its backslash-escaped pairs (what is left is what bash reads unescaped)."""
    return re.sub(r"\\.", "", text, flags=re.DOTALL)


@dataclass(slots=True)
class _Field:
    """A field being built: its text so far and what its parts say about it."""

    text: list[str] = field(default_factory=list)
    dynamic: bool = False
    glob: bool = False
    quoted: bool = False
    """Some part was quoted or escaped, so the field stays even when empty (`""`)."""
    quoted_tilde: bool = False

    def starting(self) -> bool:
        return not self.text and not self.quoted

    def word(self) -> Word | None:
        if not self.text and not self.quoted:
            return None  # an unquoted empty expansion is no argument at all
        return Word("".join(self.text), self.dynamic, self.glob, self.quoted_tilde)


def _fields(tokens: list[Token], parts: list[Node], values: list[Word], env: Env) -> list[Word]:
    """One brace-expanded word's fields: unquoted static expansions split at blanks, empty unquoted ones dropped."""
    fields: list[Word] = []
    current = _Field()
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if isinstance(token, str):
            end = index
            while end < len(tokens) and isinstance(tokens[end], str):
                end += 1
            raw = "".join(str(t) for t in tokens[index:end])
            current.quoted_tilde = current.quoted_tilde or (current.starting() and raw.startswith("\\~"))
            current.glob = current.glob or bool(_UNQUOTED_GLOB.search(raw))
            current.quoted = current.quoted or "\\" in raw
            current.text.append(_unescape_word(raw))
            index = end
            continue
        part, value = parts[token], values[token]
        index += 1
        if part.type in _SPLIT and not value.dynamic and env.default_ifs:
            for count, piece in enumerate(_IFS_WHITESPACE.split(value.text)):
                if count:
                    word = current.word()
                    fields.extend([word] if word is not None else [])
                    current = _Field()
                if piece:
                    current.text.append(piece)
                    current.glob = current.glob or bool(_GLOB_CHARS.search(piece))
            continue
        if part.type in _SPLIT and not value.dynamic and value.text:
            current.dynamic = True  # split at characters only known at run time
        if part.type in _QUOTED:
            current.quoted_tilde = current.quoted_tilde or (current.starting() and _literal_tilde(part))
            current.quoted = True
        current.dynamic = current.dynamic or value.dynamic
        current.glob = current.glob or value.glob
        current.text.append(value.text)
    word = current.word()
    return [*fields, *([word] if word is not None else [])]


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
    # `~` is kept as spelt (paths resolve it canonically), unless escaped: `\~` is a file named ~
    return Word(_unescape_word(text), glob=glob, quoted_tilde=text.startswith("\\~"))


def _quoted(text: str) -> Word:
    return Word(text, quoted_tilde=text.startswith("~"))


def _literal_tilde(node: Node) -> bool:
    """Whether a quoted string starts with a `~` as spelt (`"~/x"`), not one an expansion put there (`"$0"`)."""
    return node_text(node).lstrip("$")[1:2] == "~"


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
