"""The analyser: walk tree-sitter-bash's syntax tree and collect every simple command the line would execute."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field

import msgspec
import tree_sitter_bash
from tree_sitter import Language, Node, Parser

from keycardd.shell._words import SOURCE, Word, node_text, resolve
from keycardd.shell._wrappers import Inner, Script, unwrap

MAX_LINE = 64 * 1024
"""Longer lines are not analysed (agents' commands are far shorter; huge ones are a way to hide things)."""
_HARMLESS_TARGETS = frozenset({"/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty"})
_WRITE_OPERATORS = frozenset({">", ">>", "&>", "&>>", ">|", ">&"})


class SimpleCommand(msgspec.Struct, frozen=True, kw_only=True):
    """One program the line would run, as a policy sees it."""

    text: str
    """Program basename and arguments joined by single spaces: quotes removed, escapes resolved, wrappers unwrapped."""
    program: str
    """The program's basename (`rm` for `/bin/rm`, `\\rm`, `r''m`, `$'\\x72m'`), or its source text when dynamic."""
    args: tuple[str, ...] = ()
    assignments: tuple[str, ...] = ()
    """Leading `VAR=value` words (and `env VAR=value`), stripped from `text`."""
    writes: tuple[str, ...] = ()
    """Files this command writes through `>`, `>>`, `&>`, `>|` or as `tee`'s arguments."""
    dynamic: bool = False
    """True when the program name is only known when the line runs (`$(echo rm)`, `$X`, `${IFS}` tricks)."""
    via: tuple[str, ...] = ()
    """The wrappers it was found inside, outermost first: `sudo`, `bash -c`, `xargs`, `find -exec`, ..."""


class ShellAnalysis(msgspec.Struct, frozen=True, kw_only=True):
    commands: tuple[SimpleCommand, ...]
    """Every simple command the line would run, in source order."""
    writes: tuple[str, ...] = ()
    """Every file the line writes, de-duplicated, in order."""
    error: str | None = None
    """Why the line could not be analysed (syntax error, nesting too deep, too long); None when it was."""


class _AnalysisError(Exception):
    pass


def ascii_shadow(text: str) -> bytes:
    """`text` as UTF-8 with every non-ASCII character replaced by as many `x` bytes as it encodes to.

    tree-sitter-bash 0.25's scanner can crash the process on some non-ASCII input (found by fuzzing, e.g.
    `]{\U000f0099\x82`). Non-ASCII characters are never shell syntax, only parts of words, so parsing this shadow
    gives the same tree at the same byte offsets, and the words' real text is sliced from the original bytes.
    """
    if text.isascii():
        return text.encode("ascii")
    return b"".join(
        char.encode() if char.isascii() else b"x" * len(char.encode("utf-8", "surrogatepass")) for char in text
    )


@functools.cache
def _parser() -> Parser:
    return Parser(Language(tree_sitter_bash.language()))


def analyze(line: str, *, max_depth: int = 16) -> ShellAnalysis:
    """Analyse one shell line. Never raises: a line that cannot be analysed has `error` set instead."""
    if len(line) > MAX_LINE:
        return ShellAnalysis(commands=(), error=f"the command is longer than {MAX_LINE} characters")
    walker = _Walker(max_depth)
    try:
        walker.script(line, depth=0, via=())
    except _AnalysisError as exc:
        return ShellAnalysis(commands=tuple(walker.commands), writes=walker.all_writes(), error=str(exc))
    except RecursionError:
        return ShellAnalysis(commands=(), error=f"the command nests deeper than {max_depth} levels")
    return ShellAnalysis(commands=tuple(walker.commands), writes=walker.all_writes())


@dataclass
class _Walker:
    max_depth: int
    commands: list[SimpleCommand] = field(default_factory=list)
    writes: list[str] = field(default_factory=list)

    def all_writes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.writes))

    def script(self, text: str, depth: int, via: tuple[str, ...]) -> None:
        """Parse `text` as a shell line and walk it (wrappers' strings come back here one level deeper)."""
        if depth > self.max_depth:
            raise _AnalysisError(f"the command nests deeper than {self.max_depth} levels")
        source = text.encode("utf-8", "surrogatepass")
        if b"\0" in source:
            raise _AnalysisError("the command contains a NUL byte")
        token = SOURCE.set(source)
        try:
            tree = _parser().parse(ascii_shadow(text))
            if tree.root_node.has_error:
                raise _AnalysisError(f"the shell syntax is invalid near `{_error_excerpt(tree.root_node)}`")
            self._walk(tree.root_node, depth, via)
        finally:
            SOURCE.reset(token)

    def _walk(self, node: Node, depth: int, via: tuple[str, ...], writes: tuple[str, ...] = ()) -> None:
        if depth > self.max_depth:
            raise _AnalysisError(f"the command nests deeper than {self.max_depth} levels")
        kind = node.type
        if kind == "command":
            self._command(node, depth, via, writes)
        elif kind == "redirected_statement":
            self._redirected(node, depth, via)
        elif kind in ("command_substitution", "process_substitution", "subshell"):
            for child in node.named_children:
                self._walk(child, depth + 1, via)
        elif kind == "function_definition":
            body = node.child_by_field_name("body")
            if body is not None:  # defined inline to be called: its commands count as run
                self._walk(body, depth + 1, via)
        elif kind in ("variable_assignment", "heredoc_body", "heredoc_content"):
            self._substitutions_in(node, depth, via)
        elif kind == "file_redirect":
            self._file_redirect(node, depth, via)
        else:
            for child in node.named_children:
                self._walk(child, depth, via, writes if kind in ("list", "pipeline") else ())

    def _substitutions_in(self, node: Node, depth: int, via: tuple[str, ...]) -> None:
        for child in node.named_children:
            if child.type in ("command_substitution", "process_substitution"):
                self._walk(child, depth, via)
            else:
                self._substitutions_in(child, depth, via)

    def _redirected(self, node: Node, depth: int, via: tuple[str, ...]) -> None:
        redirects = node.children_by_field_name("redirect")
        targets = tuple(target for redirect in redirects for target in self._redirect_targets(redirect, depth, via))
        stdin_script = next((script for r in redirects if (script := _stdin_script(r)) is not None), None)
        body = node.child_by_field_name("body")
        if body is None:
            return
        if body.type == "command":
            self._command(body, depth, via, targets, stdin_script)
        else:
            self._walk(body, depth, via)
        for redirect in redirects:
            if redirect.type == "heredoc_redirect":
                self._substitutions_in(redirect, depth, via)

    def _redirect_targets(self, redirect: Node, depth: int, via: tuple[str, ...]) -> list[str]:
        """Files a redirect writes (a heredoc's own redirect, `cat <<EOF > f`, is nested inside it)."""
        if redirect.type == "file_redirect":
            return self._file_redirect(redirect, depth, via)
        found = []
        for child in redirect.named_children:
            if child.type == "file_redirect":
                found.extend(self._file_redirect(child, depth, via))
        return found

    def _file_redirect(self, redirect: Node, depth: int, via: tuple[str, ...]) -> list[str]:
        operator = next((child.type for child in redirect.children if not child.is_named), "")
        destination = redirect.child_by_field_name("destination")
        if destination is None or operator not in _WRITE_OPERATORS:
            if destination is not None:
                resolve(destination, lambda sub: self._walk(sub, depth, via))
            return []
        word = resolve(destination, lambda sub: self._walk(sub, depth, via))
        if operator == ">&" and (destination.type == "number" or word.text.isdigit() or word.text == "-"):
            return []
        if word.text in _HARMLESS_TARGETS or word.text.startswith("/dev/fd/"):
            return []
        self.writes.append(word.text)
        return [word.text]

    def _command(
        self,
        node: Node,
        depth: int,
        via: tuple[str, ...],
        writes: tuple[str, ...] = (),
        stdin_script: str | None = None,
    ) -> None:
        visit = lambda sub: self._walk(sub, depth, via)  # noqa: E731 - a callback for nested substitutions
        assignments: list[str] = []
        name_node: Node | None = None
        arguments: list[Word] = []
        own_writes = list(writes)
        for child in node.named_children:
            if child.type == "variable_assignment":
                self._substitutions_in(child, depth, via)
                assignments.append(node_text(child))
            elif child.type == "command_name":
                name_node = child
            elif child.type == "file_redirect":
                own_writes.extend(self._file_redirect(child, depth, via))
            elif child.type == "herestring_redirect":
                parts = [resolve(part, visit) for part in child.named_children]
                stdin_script = " ".join(part.text for part in parts)
            elif child.type == "heredoc_redirect":
                stdin_script = _stdin_script(child)
                self._substitutions_in(child, depth, via)
            elif name_node is not None:
                arguments.append(resolve(child, visit))
        if name_node is None:
            return  # only assignments: nothing runs
        name_word = resolve(name_node.named_children[0], visit) if name_node.named_children else Word("")
        self._emit(
            [name_word, *arguments],
            assignments=tuple(assignments),
            writes=tuple(own_writes),
            stdin_script=stdin_script,
            depth=depth,
            via=via,
        )

    def _emit(
        self,
        argv: list[Word],
        *,
        assignments: tuple[str, ...],
        writes: tuple[str, ...],
        stdin_script: str | None,
        depth: int,
        via: tuple[str, ...],
    ) -> None:
        if depth > self.max_depth:
            raise _AnalysisError(f"the command nests deeper than {self.max_depth} levels")
        program_word, args = argv[0], argv[1:]
        if program_word.dynamic:
            program = program_word.text
        else:
            program = os.path.basename(program_word.text.rstrip("/")) or program_word.text
        arg_texts = tuple(word.text for word in args)
        if program == "tee":
            tee_targets = [text for text in arg_texts if not text.startswith("-") and text not in _HARMLESS_TARGETS]
            self.writes.extend(tee_targets)
            writes = (*writes, *tee_targets)
        self.commands.append(
            SimpleCommand(
                text=" ".join((program, *arg_texts)),
                program=program,
                args=arg_texts,
                assignments=assignments,
                writes=writes,
                dynamic=program_word.dynamic,
                via=via,
            )
        )
        if program_word.dynamic:
            return
        for inner in unwrap(program, args, stdin_script):
            if isinstance(inner, Script) and inner.dynamic:  # `sh -c "$(curl ...)"`: unknowable until it runs
                self.commands.append(
                    SimpleCommand(text=inner.text, program=inner.text, dynamic=True, via=(*via, inner.label))
                )
            elif isinstance(inner, Script):
                self.script(inner.text, depth + 1, (*via, inner.label))
            elif isinstance(inner, Inner) and inner.argv:
                self._emit(
                    list(inner.argv),
                    assignments=inner.assignments,
                    writes=(),
                    stdin_script=None,
                    depth=depth + 1,
                    via=(*via, inner.label),
                )


def _stdin_script(redirect: Node) -> str | None:
    """The text a heredoc or herestring feeds to the command's stdin (what `bash <<EOF` would run)."""
    if redirect.type == "heredoc_redirect":
        body = next((child for child in redirect.named_children if child.type == "heredoc_body"), None)
        return node_text(body) if body is not None else ""
    if redirect.type == "herestring_redirect":
        return " ".join(node_text(child) for child in redirect.named_children)
    return None


def _error_excerpt(root: Node) -> str:
    stack = [root]
    while stack:
        node = stack.pop()
        if node.type == "ERROR" or node.is_missing:
            return node_text(node)[:40] or node.type
        stack.extend(reversed(node.children))
    return "?"
