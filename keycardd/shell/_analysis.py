"""The analyser: walk tree-sitter-bash's syntax tree and collect every simple command the line would execute.

Sound in the dangerous direction: every node of the tree is visited and every node type is in `_KNOWN` (any other
makes the line unparseable, so a grammar construct tree-sitter adds later is never a blind spot); where bash's own
lexing differs from tree-sitter's (backslash-newline inside a word, `time`/`coproc` before a compound command,
escaped backquotes nested in backquotes) the text is rewritten as bash reads it and parsed again; and code the line
does not show (`curl x | sh`, `eval "$X"`, `bash <(...)`) is reported as the unknown "script".
"""

from __future__ import annotations

import functools
import itertools
import math
import os
import re
import shlex
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import msgspec
import tree_sitter_bash
from msgspec.structs import replace as with_fields
from tree_sitter import Language, Node, Parser, Tree

from keycardd.canonical import canonical_path
from keycardd.shell._braces import has_unescaped
from keycardd.shell._effects import INHERIT, NO_STDIN
from keycardd.shell._facts import command_facts
from keycardd.shell._options import Grammar, parse_options
from keycardd.shell._words import (
    SOURCE,
    STATEMENTS,
    Env,
    Word,
    node_text,
    resolve,
    resolve_fields,
    unescape_backquoted,
)
from keycardd.shell._wrappers import SHELLS, Inner, Opaque, Script, Stdin, Unwrapped, family, is_wrapper, unwrap

MAX_LINE = 64 * 1024
"""Longer lines are not analysed (agents' commands are far shorter; huge ones are a way to hide things)."""
MAX_FIELDS = 8192
"""More extra arguments than this from brace expansion and splitting in one line (`{a,b}{c,d}...` repeated)
make it unparseable: the cost stays linear in the line."""
MAX_COMMANDS = 1000
"""More simple commands than this in one line (wrappers and nested scripts included) make it unparseable."""
_HARMLESS_TARGETS = frozenset({"/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty"})
_WRITE_OPERATORS = frozenset({">", ">>", "&>", "&>>", ">|", ">&"})
_KNOWN = frozenset({
    "program", "list", "pipeline", "compound_statement", "do_group", "subshell", "negated_command", "if_statement",
    "elif_clause", "else_clause", "while_statement", "for_statement", "c_style_for_statement", "case_statement",
    "case_item", "function_definition", "redirected_statement", "command", "command_name", "declaration_command",
    "unset_command", "test_command", "variable_assignments", "variable_assignment", "heredoc_redirect",
    "herestring_redirect", "file_redirect", "heredoc_body", "heredoc_content", "heredoc_start", "heredoc_end",
    "word", "string", "raw_string", "ansi_c_string", "translated_string", "concatenation", "simple_expansion",
    "expansion", "arithmetic_expansion", "command_substitution", "process_substitution", "brace_expression",
    "number", "string_content", "special_variable_name", "variable_name", "extglob_pattern", "regex",
    "test_operator", "file_descriptor", "comment", "array", "subscript", "binary_expression", "unary_expression",
    "ternary_expression", "postfix_expression", "parenthesized_expression",
})  # fmt: skip
"""Every named node type the walker understands (tree-sitter-bash 0.25's whole grammar)."""
_SPECIAL_IN_WORD = re.compile(r"[\\*?\[{~`$]")
"""A plain word without these is its own value: no escapes, globs, braces, tilde or expansions."""
_RESERVED = frozenset({"{", "}", "if", "then", "else", "elif", "fi", "case", "esac", "for", "select", "while", "until",
                       "do", "done", "function", "[[", "]]", "in"})  # fmt: skip
"""Reserved words: bash never runs a program by these names at a command's start (tree-sitter sometimes does)."""
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ASSIGNABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\[.*\])?$", re.DOTALL)
"""A name `declare NAME=VALUE` assigns: a variable, or an array element (`BASH_ALIASES[x]`)."""
_DECLARES = frozenset({"export", "declare", "typeset", "local", "readonly"})
_KEYWORD_PREFIXES = frozenset({"time", "coproc"})
_COMPOUND_STARTS = frozenset({"{", "(", "((", "[[", "if", "while", "until", "for", "case", "select", "function"})
_ARITHMETIC_SUBSCRIPT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\[[^\]]*(?:\$\(|`)")
"""`a[$(cmd)]` in a string: bash runs `cmd` wherever the text is evaluated as arithmetic (`$((x))`, `let`, `read`,
`declare`, `printf -v`, `test -v`, `[[ x -eq y ]]`), so such text is treated as code the line hides."""
_SETS_VARIABLES = frozenset({"declare", "typeset", "local", "readonly", "export", "read", "mapfile", "readarray",
                             "printf", "getopts", "let", "unset"})  # fmt: skip
"""Builtins that assign to variables named in their arguments (so the name decides whether the value is code)."""
_APPENDED_SUBSCRIPT = re.compile(r"^\[[^\]]*(?:\$\(|`)")
_COMMAND_VARIABLES = frozenset({"GIT_SSH_COMMAND", "GIT_PAGER", "PAGER", "GIT_EDITOR", "EDITOR", "VISUAL",
                                "GIT_SEQUENCE_EDITOR", "GIT_EXTERNAL_DIFF", "GIT_ASKPASS", "SSH_ASKPASS", "GIT_SSH",
                                "GIT_PROXY_COMMAND", "LESSOPEN", "LESSCLOSE", "PROMPT_COMMAND", "MANPAGER",
                                "SYSTEMD_PAGER", "BROWSER", "SUDO_ASKPASS"})  # fmt: skip
"""Environment variables whose value other programs run as a command."""
_CODE_VARIABLES = frozenset({"BASH_ENV", "ENV", "LD_PRELOAD", "LD_AUDIT", "PERL5OPT", "NODE_OPTIONS", "RUBYOPT",
                             "GIT_CONFIG_PARAMETERS", "GIT_CONFIG_GLOBAL", "GIT_EXEC_PATH", "SHELLOPTS", "BASHOPTS",
                             "GIT_TEMPLATE_DIR", "GIT_CONFIG_COUNT", "TAR_OPTIONS", "ZIPOPT", "ZIP", "UNZIP",
                             "GZIP", "XZ_OPT", "ZSTD_CLEVEL", "LESS", "MANOPT", "GREP_OPTIONS", "RSYNC_RSH",
                             "RSYNC_CONNECT_PROG", "SSH_AUTH_SOCK_CMD", "CVS_RSH", "RSH"})  # fmt: skip
_SPELT_PATH = re.compile(r"^(?:[~./]|[^\s=:]*/)[^\s]{0,4095}$|^[^\s/=:]*\.[A-Za-z0-9_-]+$")
"""A word that names a file (`~/.ssh/id_rsa`, `./x`, `a/b`, `.env`, `key.pem`), not text or a `KEY=value`."""
_MAX_SPELT_PATHS = 64
_BARE_NAME = re.compile(r"(?<![\w$\{])\w+")
"""A name as spelt outside `$x`/`${x}`: a whole run of word characters (`read x`, `for x`, `x=`)."""
_BRACES_OFF = re.compile(r"(?<![\w-])\+[A-Za-z]*B|braceexpand")
_BASH_EVALUATORS = frozenset({"eval", "trap", "alias", "mapfile", "readarray", ".", "source"})
"""Wrappers whose string the same bash runs (so brace expansion applies as in the line itself)."""
_PROMPT_VARIABLES = frozenset({"PS0", "PS1", "PS2", "PS3", "PS4"})
"""Prompts are expanded with their command substitutions (PS4 on every command under `set -x`)."""
"""Environment variables that make the next program load code from somewhere the line does not show."""


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
    """Files this command writes through `>`, `>>`, `&>`, `>|` or as `tee`'s arguments, as spelt."""
    dynamic: bool = False
    """True when the program name is only known when the line runs (`$(echo rm)`, `$X`, `/bin/r[m]`)."""
    via: tuple[str, ...] = ()
    """The wrappers it was found inside, outermost first: `sudo`, `bash -c`, `xargs`, `find -exec`, ..."""
    unknowns: frozenset[str] = frozenset()
    """What the analysis could not resolve: "args", "targets", "cwd", "glob", "script" (see the schema's `unknowns`)."""
    accesses: tuple[tuple[str, str], ...] = ()
    """(canonical absolute path, access) for its path arguments and redirects; access in read/write/delete/exec/use."""
    flags: tuple[str, ...] = ()
    """Its options, clusters split: `-fdx` gives `-fdx`, `-f`, `-d`, `-x`; `--force=x` gives `--force`."""
    hosts: tuple[str, ...] = ()
    """Canonical hosts its URL-like arguments name (every reading real URL parsers make)."""
    subcommand: str | None = None
    """Its first operand (`push` in `git -C repo push`)."""
    stdin_from: tuple[str, ...] = ()
    """Programs upstream of it in its pipeline (`curl` for the `sh` of `curl x | sh`)."""
    deletes_recursively: bool = False
    """rm -r, find -delete or -exec rm, rsync --delete: it removes whole trees."""
    spawns_itself: bool = False
    """It calls a function of the line that runs itself in the background or a pipeline: a fork bomb's structure."""
    why: str | None = None
    """For a command with the unknown "script": what runs unseen code (the reason policies can quote)."""

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(path for path, _ in self.accesses))


class ShellAnalysis(msgspec.Struct, frozen=True, kw_only=True):
    commands: tuple[SimpleCommand, ...]
    """Every simple command the line would run, in source order."""
    writes: tuple[str, ...] = ()
    """Every file the line writes (as spelt), de-duplicated, in order."""
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


def analyze(
    line: str,
    *,
    cwd: str = "",
    home: str = "",
    fold_case: bool = False,
    max_depth: int = 16,
    time_limit_s: float | None = None,
) -> ShellAnalysis:
    """Analyse one shell line. Never raises: a line that cannot be analysed has `error` set instead.

    `cwd` (the payload's working directory) and `home` (the user's home directory, as the daemon resolved it)
    resolve `~`, `$HOME`, `$PWD` and relative paths; when either is empty, what depends on it is reported unknown.
    `fold_case` case-folds paths, for case-insensitive file systems. No I/O and no environment reads.
    `time_limit_s` bounds the work (analysis is linear in the line, but a daemon serving several agents should not
    spend its budget on one line): past it the line is unparseable.
    """
    if len(line) > MAX_LINE:
        return ShellAnalysis(commands=(), error=f"the command is longer than {MAX_LINE} characters")
    walker = _Walker(max_depth, home=home or None, fold_case=fold_case)
    if time_limit_s is not None:
        walker.deadline = time.monotonic() + time_limit_s
    walker.cwd = cwd if cwd.startswith("/") else None
    try:
        walker.script(line, _Context(depth=0, top=True))
        commands = walker.finish()
    except _AnalysisError as exc:
        return ShellAnalysis(commands=(), error=str(exc))
    except RecursionError:
        return ShellAnalysis(commands=(), error=f"the command nests deeper than {max_depth} levels")
    return ShellAnalysis(commands=commands, writes=tuple(dict.fromkeys(walker.writes)))


@dataclass(frozen=True, slots=True)
class _Context:
    """Where a node sits: nesting, wrappers around it, what its stdin is, and whether it runs in the background."""

    depth: int
    via: tuple[str, ...] = ()
    stdin: Stdin | None = None
    top: bool = False
    """In the line's main sequence (not in a subshell, pipeline, loop or branch): a `cd` here moves later commands."""
    spawned: bool = False
    """In a pipeline or behind `&`: run in a new process."""
    function: str | None = None
    targets: bool = False
    """Its arguments come partly from elsewhere (xargs' stdin, find's matches)."""
    positional: tuple[Word, ...] = ()
    braces: bool = True
    """Read by bash, which expands `{a,b}`: false in code other shells run (`sh -c`, `ssh host CMD`, `watch`)."""


@dataclass
class _Scope:
    """The variables of one parsed text whose value is known statically (assigned once, before use, to a constant)."""

    assignments: dict[str, list[Node]] = field(default_factory=dict)
    mentions: dict[str, int] = field(default_factory=dict)
    source: bytes = b""
    home_known: bool = True
    pwd_known: bool = True
    ifs_changed: bool = False
    braces_off: bool = False
    """The text may turn brace expansion off (`set +B`, `set +o braceexpand`): brace words stay unknown."""
    cd_searches: bool = False
    """The text may make `cd NAME` look elsewhere than the working directory (CDPATH, cdable_vars)."""
    dotglob: bool = False
    """The text may make wildcards match names starting with a dot (dotglob, GLOBIGNORE)."""


@dataclass
class _Walker:
    max_depth: int
    home: str | None
    fold_case: bool
    cwd: str | None = None
    commands: list[SimpleCommand] = field(default_factory=list)
    writes: list[str] = field(default_factory=list)
    functions: dict[str, Node] = field(default_factory=dict)
    self_spawning: set[str] = field(default_factory=set)
    hashed: dict[str, str] = field(default_factory=dict)
    hashed_at: dict[str, int] = field(default_factory=dict)
    walking_functions: set[str] = field(default_factory=set)
    aliases: dict[str, str] = field(default_factory=dict)
    expanding_aliases: set[str] = field(default_factory=set)
    pending_reads: list[Word] = field(default_factory=list)
    """Files `<` redirects read, waiting for the command they belong to (the next one emitted)."""
    written: dict[str, str | None] = field(default_factory=dict)
    """Canonical paths the line writes, with their text when the line shows it (`cat <<'X' > f.sh`)."""
    default_stdin: Stdin | None = None
    scope: _Scope = field(default_factory=_Scope)
    deadline: float = math.inf
    words: int = 0
    fields: int = 0
    """Arguments brace expansion and field splitting added so far, beyond one per word (bounded by MAX_FIELDS)."""
    spelt_paths: dict[str, None] = field(default_factory=dict)
    """Canonical paths the line spells outside any command's arguments (assignments, arrays, here-strings,
    here-documents): where a command whose arguments are only known at run time may be pointed."""
    assumed_builtins: set[str] = field(default_factory=set)
    """Names a command substitution's output was read from (`echo`, `printf`, `cat`): the line must not define
    functions or aliases by these names."""

    def finish(self) -> tuple[SimpleCommand, ...]:
        """Facts that need the whole line: fork-bomb functions and `hash -p` renames apply to every call."""
        redefined = self.assumed_builtins & ({*self.functions, *self.aliases, *self.hashed} | {"enable"})
        if self.assumed_builtins and (redefined or any(c.program == "enable" for c in self.commands)):
            raise _AnalysisError("the line redefines a command whose output it uses in a substitution")
        result = []
        for index, found in enumerate(self.commands):
            command = with_fields(found, spawns_itself=True) if found.program in self.self_spawning else found
            if "args" in command.unknowns and self.spelt_paths and not command.dynamic:
                command = self._pointed_at_spelt_paths(command)
            result.append(command)
            target = self.hashed.get(command.program)
            if target is not None and index < self.hashed_at[command.program]:  # ran before the `hash -p` was seen
                result.append(
                    with_fields(command, program=target, text=f"{target} {command.text}", via=(*command.via, "hash -p"))
                )
        return tuple(result)

    def _pointed_at_spelt_paths(self, command: SimpleCommand) -> SimpleCommand:
        """`a=(~/.ssh/id_rsa); cat ${a[0]}`, `while read f; do cat "$f"; done <<< ~/.ssh/id_rsa`: a command whose
        arguments are only known at run time may receive any path the line spells, so each is a path it may
        touch, with the access its program gives its operands."""
        words = [Word("--"), *(Word(path) for path in self.spelt_paths)]
        facts = command_facts(command.program, words, cwd="/", home=self.home, fold_case=self.fold_case)
        extra = [access for access in facts.accesses if access not in command.accesses]
        return with_fields(command, accesses=(*command.accesses, *extra)) if extra else command

    def _remember_paths(self, node: Node | None, words: list[Word]) -> None:
        """Record the static paths among `words` (and an array's elements) in `spelt_paths`, boundedly."""
        if node is not None and node.type == "array":
            env = Env(lambda _sub: None, self._home(), lambda _name, _offset: None)
            words = [resolve(element, env) for element in node.named_children]
        for word in words:
            text = word.text
            if len(self.spelt_paths) >= _MAX_SPELT_PATHS or word.dynamic or not _SPELT_PATH.match(text):
                continue
            if (text.startswith("~") and not self._home()) or (not text.startswith(("/", "~")) and self.cwd is None):
                continue
            home = self._home() or "/"
            self.spelt_paths[canonical_path(text, cwd=self.cwd or "/", home=home, fold_case=self.fold_case)] = None

    # ---- parsing ---------------------------------------------------------------------------------------------

    def script(self, text: str, ctx: _Context) -> None:
        """Parse `text` as a shell line and walk it (wrappers' strings come back here one level deeper)."""
        if ctx.depth > self.max_depth:
            raise _AnalysisError(f"the command nests deeper than {self.max_depth} levels")
        if "\0" in text:
            raise _AnalysisError("the command contains a NUL byte")
        tree, source = self._parse_as_bash(text)
        saved_scope = self.scope
        self.scope = _scope(tree, source, inherit=saved_scope if ctx.depth else None)
        token = SOURCE.set(source)
        try:
            self._walk(tree.root_node, ctx)
        finally:
            SOURCE.reset(token)
            self.scope = saved_scope

    def _parse_as_bash(self, text: str) -> tuple[Tree, bytes]:
        """Parse, then rewrite where bash's lexer differs from tree-sitter's and parse again."""
        for _ in range(8):
            source = text.encode("utf-8", "surrogatepass")
            tree = _parser().parse(ascii_shadow(text))
            # First: an unjoined `a&\<newline>&b` is an error. But not when a here-document failed to parse: where
            # its body ends is unknown, and a joined `E\<newline>OF` would end it where bash does not.
            broken_heredoc = tree.root_node.has_error and b"<<" in source
            rewritten = None if broken_heredoc else _join_continuations(text, tree, source)
            if rewritten is not None:
                text = rewritten
                continue
            if tree.root_node.has_error:
                raise _AnalysisError(f"the shell syntax is invalid near `{_error_excerpt(tree.root_node, source)}`")
            if b"time" in source or b"coproc" in source:
                rewritten = _drop_keyword_prefixes(text, tree, source)
            if rewritten is None:
                _check_node_types(tree.root_node, source)
                return tree, source
            text = rewritten
        raise _AnalysisError("the command needs too many rewrites to read as bash does")

    # ---- statements ------------------------------------------------------------------------------------------

    def _walk(self, node: Node, ctx: _Context) -> None:
        if ctx.depth > self.max_depth:
            raise _AnalysisError(f"the command nests deeper than {self.max_depth} levels")
        kind = node.type
        if kind == "command":
            self._command(node, ctx, redirects=[])
        elif kind == "redirected_statement":
            self._redirected(node, ctx)
        elif kind == "pipeline":
            self._pipeline(node, ctx)
        elif kind == "list":
            self._list(node, ctx)
        elif kind in ("program", "compound_statement", "do_group"):
            self._sequence(node, ctx if kind == "program" else replace(ctx, top=False))
        elif kind in ("command_substitution", "process_substitution"):
            self._substitution(node, ctx)
        elif kind == "function_definition":
            self._function(node, ctx)
        elif kind in ("variable_assignment", "variable_assignments"):
            self._assignments(node, ctx)
        elif kind == "declaration_command":
            self._declaration(node, ctx)
        else:  # subshells, loops, branches, tests, case items, words: walk every child
            inner = replace(ctx, top=False, stdin=ctx.stdin)
            for child in node.children:
                if child.is_named:
                    self._child(child, inner)

    def _child(self, node: Node, ctx: _Context) -> None:
        """A statement is walked; a word-like node has its nested commands walked and its text checked."""
        if node.type in STATEMENTS or node.type in (
            "variable_assignment",
            "program",
            "do_group",
            "elif_clause",
            "else_clause",
            "case_item",
            "command_substitution",
            "process_substitution",
        ):
            self._walk(node, ctx)
        elif node.type in ("file_redirect", "heredoc_redirect", "herestring_redirect"):
            self._redirect(node, ctx)
        else:
            self._word(node, ctx)

    def _sequence(self, node: Node, ctx: _Context) -> None:
        children = node.children
        for index, child in enumerate(children):
            if not child.is_named:
                continue
            background = index + 1 < len(children) and children[index + 1].type == "&"
            self._child(child, replace(ctx, spawned=True, top=False) if background else ctx)

    def _list(self, node: Node, ctx: _Context) -> None:
        """`a && b || c`: the right of `||` may not run, so a `cd` there leaves the directory unknown."""
        operator = next((child.type for child in node.children if not child.is_named), "&&")
        named = node.named_children
        for index, child in enumerate(named):
            self._child(child, replace(ctx, top=ctx.top and (index == 0 or operator == "&&")))

    def _pipeline(
        self,
        node: Node,
        ctx: _Context,
        stdin: Stdin | None = None,
        before: tuple[str, ...] = (),
        last_stdin: Stdin | None = None,
    ) -> None:
        """Each element reads the previous one's output: static when the line shows it (`echo 'CMD' | sh`).

        `last_stdin`: tree-sitter hangs a redirect after the last element (`a | sh < <(curl x)`) on the whole
        pipeline; bash gives it to the last element.
        """
        stdin = stdin or ctx.stdin
        upstream = list(before)
        children = node.named_children
        for position, child in enumerate(children):
            if position == len(children) - 1 and last_stdin is not None:
                stdin = last_stdin
            first = len(self.commands)
            self._child(child, replace(ctx, stdin=stdin, spawned=True, top=False))
            emitted = self.commands[first:]
            for index in range(first, len(self.commands)):
                if upstream:
                    self.commands[index] = with_fields(
                        self.commands[index],
                        stdin_from=tuple(dict.fromkeys((*upstream, *self.commands[index].stdin_from))),
                    )
            upstream.extend(command.program for command in emitted)
            text = _static_output(child)
            names = ", ".join(dict.fromkeys(command.program for command in emitted)) or "a command"
            stdin = Stdin(text, f"a pipe from {names}")

    def _substitution(self, node: Node, ctx: _Context) -> None:
        text = node_text(node)
        # `>(sh)` reads what the outer command writes: code nobody can see
        stdin = Stdin(None, "an output process substitution") if text.startswith(">(") else None
        inner = replace(ctx, depth=ctx.depth + 1, top=False, spawned=False, stdin=stdin)
        if text.startswith("`") and has_unescaped(text[1:-1], "`"):
            raise _AnalysisError("a backquote inside backquotes is not escaped: bash would end the substitution there")
        if text.startswith("`") and "\\" in text:  # backquotes: bash unescapes \` \$ \\ and parses again
            self.script(unescape_backquoted(text[1:-1]), inner)
            return
        for child in node.named_children:
            self._child(child, inner)

    def _function(self, node: Node, ctx: _Context) -> None:
        name_node = node.child_by_field_name("name")
        name = node_text(name_node) if name_node is not None else ""
        body = node.child_by_field_name("body")
        stdin = ctx.stdin
        for child in node.named_children:
            if child.type in ("file_redirect", "heredoc_redirect", "herestring_redirect"):
                stdin, _ = self._redirect(child, replace(ctx, stdin=stdin))  # `f() { sh; } <<< CMD`: every call's
            elif child != body and child.type not in ("word",):
                self._child(child, ctx)
        if body is None:
            return
        self.functions[name] = body
        self.walking_functions.add(name)
        try:  # defined inline to be called: its commands count as run
            inner = replace(ctx, depth=ctx.depth + 1, function=name, top=False, spawned=False, stdin=stdin)
            self._walk(body, inner)
        finally:
            self.walking_functions.discard(name)

    def _assignments(self, node: Node, ctx: _Context) -> None:
        nodes = [node] if node.type == "variable_assignment" else node.named_children
        for assignment in nodes:
            self._assignment(assignment, ctx)

    def _assignment(self, node: Node, ctx: _Context) -> str:
        """Walk an assignment's value; values of command-carrying variables (GIT_SSH_COMMAND, ...) are code."""
        if node.type != "variable_assignment":
            self._child(node, ctx)
            return node_text(node)
        name_node = node.child_by_field_name("name")
        value_node = node.child_by_field_name("value")
        name = node_text(name_node) if name_node is not None else ""
        if name_node is not None and name_node.type == "subscript":
            self._word(name_node, ctx)
        value = self._word(value_node, ctx) if value_node is not None else Word("")
        self._check_literal(value, ctx)
        if name not in ("HOME", "PWD", "OLDPWD", "IFS", "SHELL") and not name.endswith("PATH"):
            self._remember_paths(value_node, [value])  # HOME=/tmp moves `~`; it is not a file the line names
        appends = any(child.type == "+=" for child in node.children)
        if appends and not value.dynamic and _APPENDED_SUBSCRIPT.search(value.text):  # x=a; x+='[$(cmd)]'
            self._opaque(value.text, "an appended array subscript with a command substitution runs it", ctx)
        self._environment(name, value, ctx)
        return f"{name}={value.text}"

    def _environment(self, name: str, value: Word, ctx: _Context) -> None:
        """Variables whose value runs as a command (GIT_SSH_COMMAND, PAGER, ...) or loads code (BASH_ENV, ...)."""
        if not value.text:
            return
        base = name.split("[", 1)[0]
        if base in ("BASH_ALIASES", "BASH_CMDS"):  # the alias and hash tables themselves
            key = name[len(base) + 1 : -1] if "[" in name else ""
            if value.dynamic or not key or any(mark in key for mark in "'\"\\$`"):
                self._opaque(f"{name}={value.text}", f"{base} is set to something the line does not show", ctx)
            elif base == "BASH_ALIASES":
                self.aliases[key] = value.text
                self._run(Script(f"alias {key}", value.text), ctx)
            else:
                self.hashed[key] = os.path.basename(value.text.rstrip("/")) or value.text
                self.hashed_at.setdefault(key, len(self.commands))
        elif name.startswith("BASH_FUNC_"):  # an exported function: bash defines it in every child bash
            self._run(Script(name, f"_{value.text}") if not value.dynamic else Opaque(name, f"{name} is code"), ctx)
        elif name in _COMMAND_VARIABLES:
            item = Script(f"${name}", value.text) if not value.dynamic else Opaque(name, f"${name} is a command")
            self._run(item, ctx)
        elif name in _PROMPT_VARIABLES and any(mark in value.text for mark in ("$(", "`", "${")):
            self._opaque(f"{name}={value.text}", f"{name} is expanded like a prompt: its substitutions run", ctx)
        elif name in _CODE_VARIABLES and _loads_code(name, value.text):
            self._opaque(f"{name}={value.text}", f"{name} makes programs load code the line does not show", ctx)
        elif value.dynamic and name in _PROMPT_VARIABLES:
            self._opaque(f"{name}={value.text}", f"{name} set to a value only known at run time", ctx)

    def _declaration(self, node: Node, ctx: _Context) -> None:
        """`declare`, `local`, `export`, `readonly`, `typeset`: assignments with code in their values."""
        keyword = next((child.type for child in node.children if not child.is_named), "declare")
        words: list[Word] = []
        for group in _adjacent_groups(node.named_children):
            if len(group) == 1 and group[0].type == "variable_assignment":
                words.append(Word(self._assignment(group[0], ctx)))
                continue
            # `export GIT_$""SSH_COMMAND=CMD`: tree-sitter splits what bash reads as one word at the `$""`
            parts = [
                Word(node_text(child)) if child.type == "variable_name" else self._word(child, ctx) for child in group
            ]
            word = Word("".join(part.text for part in parts), any(part.dynamic for part in parts))
            words.append(word)
            name, equals, value = word.text.partition("=")
            if equals and not word.text.startswith("-"):  # `declare 'BASH_ALIASES[x]=CMD'`: an assignment too
                self._environment(name.rstrip("+"), Word(value, word.dynamic), ctx)
        self._emit([Word(keyword), *words], ctx, assignments=(), redirect_writes=[], declared=True)

    # ---- redirects -------------------------------------------------------------------------------------------

    def _redirected(self, node: Node, ctx: _Context) -> None:
        body = node.child_by_field_name("body")
        redirects = [child for child in node.named_children if child != body]
        if body is not None and body.type == "command":
            self._command(body, ctx, redirects=redirects, statement=node)
            return
        stdin, writes, deferred = ctx.stdin, list[Word](), list[Node]()
        for redirect in redirects:
            stdin, more = self._redirect(redirect, replace(ctx, stdin=stdin), deferred)
            writes.extend(more)
        first = len(self.commands)
        if body is not None and body.type == "pipeline":
            self._pipeline(body, ctx, last_stdin=stdin if stdin is not ctx.stdin else None)
        elif body is not None:
            self._child(body, replace(ctx, stdin=stdin))
        if writes and body is None:  # `> f` alone truncates f like `: > f`
            self._emit([Word(":")], ctx, assignments=(), redirect_writes=writes)
        elif writes:  # `{ ...; } > f`, `a | b > f`: the statement's output goes to f
            last = body.named_children[-1] if body is not None and body.type == "pipeline" else None
            self._record_writes(writes, first, _static_output(last) if last is not None else None)
        self._walk_deferred(deferred, node, ctx, first)

    def _record_writes(self, writes: list[Word], first: int, text: str | None) -> None:
        """Files a compound statement writes: on its last command's facts, and as `Tool::"write"` requests."""
        unknowns: set[str] = set()
        accesses = [access for word in writes for access in self._paths(word, "write", unknowns)]
        self.writes.extend(word.text for word in writes)
        for path, _ in accesses:
            self.written[path] = text
        if len(self.commands) > first:
            last = self.commands[-1]
            self.commands[-1] = with_fields(
                last,
                writes=(*last.writes, *(word.text for word in writes)),
                accesses=tuple(dict.fromkeys((*last.accesses, *accesses))),
                unknowns=last.unknowns | unknowns,
            )

    def _walk_deferred(self, deferred: list[Node], statement: Node, ctx: _Context, first: int) -> None:
        """The rest of a line tree-sitter nested in a heredoc redirect; a leading `|` pipes the statement into it."""
        programs = tuple(dict.fromkeys(command.program for command in self.commands[first:]))
        for node in deferred:
            if node.type == "pipeline" and node.children and node.children[0].type in ("|", "|&"):
                names = ", ".join(programs) or "a command"
                stdin = Stdin(_static_output(statement), f"a pipe from {names}")
                self._pipeline(node, replace(ctx, top=False), stdin=stdin, before=programs)
            else:
                self._child(node, replace(ctx, stdin=None, top=False))

    def _redirect(
        self, node: Node, ctx: _Context, deferred: list[Node] | None = None
    ) -> tuple[Stdin | None, list[Word]]:
        """Walk a redirect; returns the stdin it gives the command and the files it writes.

        tree-sitter puts the rest of the line after a heredoc's start (`cat <<X | sh`, `x <<X && y`) inside the
        heredoc redirect: those statements go to `deferred`, to be walked once the command itself is known.
        """
        stdin = ctx.stdin
        writes: list[Word] = []
        if node.type == "heredoc_redirect":
            for child in node.named_children:
                if child.type == "file_redirect":
                    writes.extend(self._file_redirect(child, ctx)[1])
                elif child.type in STATEMENTS or child.type == "herestring_redirect":
                    if deferred is not None:
                        deferred.append(child)
                    else:
                        self._child(child, replace(ctx, stdin=None, top=False))
            stdin = self._heredoc(node, ctx)
        elif node.type == "herestring_redirect":
            parts = [self._word(child, ctx) for child in node.named_children if child.type != "file_descriptor"]
            text = " ".join(part.text for part in parts)
            stdin = Stdin(None if any(p.dynamic for p in parts) else text + "\n", "a here-string")
            self._remember_paths(None, [Word(piece) for piece in text.split()] if stdin.text is not None else [])
        elif node.type == "file_redirect":
            new_stdin, writes = self._file_redirect(node, ctx)
            stdin = new_stdin if new_stdin is not None else stdin
        else:
            self._child(node, ctx)
        return stdin, writes

    def _heredoc(self, node: Node, ctx: _Context) -> Stdin:
        start = next((child for child in node.named_children if child.type == "heredoc_start"), None)
        body = next((child for child in node.named_children if child.type == "heredoc_body"), None)
        quoted = start is not None and any(mark in node_text(start) for mark in "'\"\\")
        text = node_text(body) if body is not None else ""
        if quoted or body is None:
            self._remember_paths(None, [Word(piece) for piece in text.split()])
            return Stdin(text, "a here-document")
        operator = next((child.type for child in node.children if not child.is_named), "<<")
        dynamic = bool(body.named_child_count and any(c.type != "heredoc_content" for c in body.named_children))
        if operator == "<<-" and not body.named_child_count and ("$" in text or "`" in text):
            # tree-sitter does not parse expansions in `<<-` bodies: parse the tab-stripped body as a `<<` body.
            stripped = "\n".join(part.lstrip("\t") for part in text.split("\n"))
            delimiter = "KEYCARD_EOF"
            while delimiter in stripped:
                delimiter += "_"
            self.script(f": <<{delimiter}\n{stripped}\n{delimiter}\n", replace(ctx, depth=ctx.depth + 1, stdin=None))
            dynamic = True
        for child in body.named_children:
            self._word(child, ctx)
        for segment in _backquoted(text):  # tree-sitter leaves backquotes in heredoc bodies unparsed
            self.script(unescape_backquoted(segment), replace(ctx, depth=ctx.depth + 1, stdin=None, top=False))
        if "\\" in text or "`" in text:
            dynamic = True
        if not dynamic:
            self._remember_paths(None, [Word(piece) for piece in text.split()])
        return Stdin(None if dynamic else text, "a here-document with expansions" if dynamic else "a here-document")

    def _file_redirect(self, node: Node, ctx: _Context) -> tuple[Stdin | None, list[Word]]:
        operator = next((child.type for child in node.children if not child.is_named), "")
        descriptor = next((node_text(c) for c in node.named_children if c.type == "file_descriptor"), None)
        destination = node.child_by_field_name("destination")
        others = [c for c in node.named_children if c != destination and c.type != "file_descriptor"]
        for other in others:
            self._word(other, ctx)
        if destination is None:
            return None, []
        words = self._fields(destination, ctx)  # `> f${IFS}` is `> f`; two words or none: an error, unknown here
        word = words[0] if len(words) == 1 else Word(node_text(destination), dynamic=True)
        if operator in ("<", "<>") and destination.type != "process_substitution":
            self.pending_reads.append(word)  # `cat < ~/.ssh/id_rsa` reads the file: a path of the next command
        if operator in ("<", "<&", "<>") and descriptor in (None, "0"):
            if operator == "<&" and word.text == "-":
                return None, []
            source = "a file descriptor" if operator == "<&" else f"the file `{word.text}`"
            return Stdin(None, source), []
        if operator not in _WRITE_OPERATORS:
            return None, []
        if operator == ">&" and (destination.type == "number" or word.text.isdigit() or word.text == "-"):
            return None, []
        if word.text in _HARMLESS_TARGETS or word.text.startswith("/dev/fd/"):
            return None, []
        return None, [word]

    # ---- simple commands -------------------------------------------------------------------------------------

    def _command(self, node: Node, ctx: _Context, redirects: list[Node], statement: Node | None = None) -> None:
        assignments: list[str] = []
        name_node: Node | None = None
        words: list[Word] = []
        stdin = ctx.stdin if ctx.stdin is not None else self.default_stdin
        writes: list[Word] = []
        deferred: list[Node] = []
        for redirect in redirects:
            stdin, more = self._redirect(redirect, replace(ctx, stdin=stdin), deferred)
            writes.extend(more)
        redirect_starts = {r.start_byte for r in redirects} | {
            c.start_byte
            for c in node.named_children
            if c.type in ("file_redirect", "heredoc_redirect", "herestring_redirect")
        }
        last_end = -1
        children = node.children
        for index, child in enumerate(children):
            # tree-sitter split one bash word here (`-exe$""c`): the next node starts where this one ends
            split = index + 1 < len(children) and children[index + 1].start_byte == child.end_byte
            if child.end_byte in redirect_starts and node_text(child).isdigit():
                continue  # `bash 0<<<'CMD'`: tree-sitter reads the descriptor as an argument; bash does not
            if child.type == "variable_assignment" and name_node is None:
                assignments.append(self._assignment(child, ctx))
            elif child.type == "command_name":
                name_node = child
                if not child.named_children:
                    words.append(Word(""))
                elif split:
                    words.append(_unsplit(self._word(child.named_children[0], ctx), child))
                else:  # `{r,}m` runs rm; `$e rm` with e empty runs rm too
                    words.extend(self._fields(child.named_children[0], ctx))
            elif child.type in ("file_redirect", "heredoc_redirect", "herestring_redirect"):
                stdin, more = self._redirect(child, replace(ctx, stdin=stdin), deferred)
                writes.extend(more)
            elif name_node is not None:
                self._argument(child, ctx, words, joined=child.start_byte == last_end, split=split)
            elif child.is_named:
                self._child(child, ctx)
            else:
                words.append(_unnamed_token(child))
                name_node = child
            last_end = child.end_byte
        first = len(self.commands)
        if name_node is None or not words:  # no command word, or only expansions that came to nothing
            if writes:  # `X=1 > f` truncates f like `: > f`
                self._emit([Word(":")], ctx, assignments=tuple(assignments), redirect_writes=writes)
            self._walk_deferred(deferred, statement or node, ctx, first)
            return  # only assignments: nothing runs
        if words[0].text == "exec" and len(words) == 1 and stdin is not ctx.stdin and stdin is not None:
            self.default_stdin = stdin  # `exec < <(curl x)`: every later command reads that
        if words[0].text in ("cd", "pushd", "popd") and not words[0].dynamic:
            self._cd(words, ctx)
        text = _static_output(statement or node, ignore_writes=True) if writes else None
        self._emit(
            words, replace(ctx, stdin=stdin), assignments=tuple(assignments), redirect_writes=writes, written_text=text
        )
        self._walk_deferred(deferred, statement or node, ctx, first)

    def _argument(self, child: Node, ctx: _Context, words: list[Word], *, joined: bool, split: bool) -> None:
        """Append the arguments one word of a command gives (none, one, or several: `{a,b}`, `$IFS`)."""
        if child.is_named and not joined and not split:
            words.extend(self._fields(child, ctx))
            return
        # An unnamed token (`-n$` in `-n$""5`) is text tree-sitter did not understand: only known at run time.
        word = self._word(child, ctx) if child.is_named else _unnamed_token(child)
        if joined and words:  # tree-sitter split one bash word in two: join them
            before = words.pop()
            word = Word(before.text + word.text, before.dynamic or word.dynamic, before.glob or word.glob)
        words.append(_unsplit(word, child))

    def _cd(self, words: list[Word], ctx: _Context) -> None:
        operands = [word for word in words[1:] if not (word.text.startswith("-") and len(word.text) > 1)]
        if not ctx.top or words[0].text == "popd" or any(word.dynamic for word in operands) or len(operands) > 1:
            self.cwd = None
            return
        target = operands[0].text if operands else self.home
        if self.scope.cd_searches and target is not None and not target.startswith(("/", ".", "~")):
            self.cwd = None  # `CDPATH=~/.config cd keycard`, `shopt -s cdable_vars; cd d`: the place is elsewhere
            return
        known = target is not None and (target.startswith("/") or self.cwd is not None)
        if target is None or target == "-" or not known or (target.startswith("~") and not self._home()):
            self.cwd = None
            return
        self.cwd = canonical_path(target, cwd=self.cwd or "/", home=self._home() or "/", fold_case=self.fold_case)

    def _word(self, node: Node, ctx: _Context) -> Word:
        kind = node.type
        if kind in ("word", "number", "raw_string"):
            text = node_text(node)
            if kind != "raw_string" and not _SPECIAL_IN_WORD.search(text):
                self._count_word()
                return Word(text)  # the common case, without the machinery below
            if kind == "raw_string" and "[" not in text and "`" not in text:
                self._count_word()
                return Word(text[1:-1], quoted_tilde=text[1:2] == "~")  # 'text': nothing to resolve or check
        return self._checked(node, ctx, lambda env: [resolve(node, env)])[0]

    def _fields(self, node: Node, ctx: _Context) -> list[Word]:
        """The arguments one word of a command's argv becomes: brace expansion, expansions and field splitting."""
        kinds = ("word", "concatenation", "simple_expansion", "expansion", "brace_expression", "command_substitution")
        if node.type not in kinds:
            return [self._word(node, ctx)]
        text = node_text(node)
        if node.type == "word" and not _SPECIAL_IN_WORD.search(text):
            self._count_word()
            return [Word(text)]  # the common case
        if "{" not in text and "$" not in text:
            return [self._word(node, ctx)]
        braces = ctx.braces and not self.scope.braces_off
        words = self._checked(node, ctx, lambda env: resolve_fields(node, env, braces=braces))
        self.fields += len(words) - 1
        if self.fields > MAX_FIELDS:
            raise _AnalysisError(f"the command's words expand to more than {MAX_FIELDS} arguments")
        return words

    def _count_word(self) -> None:
        self.words += 1
        if self.words % 256 == 0 and time.monotonic() > self.deadline:
            raise _AnalysisError("the command takes too long to analyse")

    def _checked(self, node: Node, ctx: _Context, resolver: Callable[[Env], list[Word]]) -> list[Word]:
        """Resolve a word-like node, walking the commands nested in it and recording the code it hides."""
        self._count_word()
        env = Env(lambda sub: self._child(sub, replace(ctx, top=False, stdin=None)), self._home(), self._lookup(ctx))
        env.default_ifs = not self.scope.ifs_changed
        env.substitution_output = self._substitution_output
        words = resolver(env)
        raw = node_text(node)
        for word in words:
            self._check_literal(word, ctx)
        dynamic = any(word.dynamic for word in words)
        if dynamic and "[" in raw and ("$(" in raw or "`" in raw) and _quoted_subscript_code(node):
            self._opaque(raw, "an array subscript with a command substitution runs it when evaluated", ctx)
        if ("$(" in raw or "`" in raw) and (hidden := _hidden_substitutions(node)) is not None:
            self._opaque(raw, f"{hidden} runs when bash expands it", ctx)
        if "`" in raw:  # tree-sitter leaves backquotes unparsed in some words (`${x:-`cmd`}`)
            for text in _unparsed_backquotes(node):
                for segment in _backquoted(text):
                    self.script(unescape_backquoted(segment), replace(ctx, depth=ctx.depth + 1, top=False, stdin=None))
        if env.prompt_expansion:
            self._opaque(raw, "`${x@P}` runs the command substitutions in the variable's value", ctx)
        return words

    def _substitution_output(self, node: Node) -> str | None:
        """`$(echo TEXT)`, `$(printf TEXT)`: the text, when static. Relies on echo and printf being the builtins,
        which `finish` checks once the whole line is known (a function or alias of that name makes it unparseable)."""
        text = node_text(node)
        named = node.named_children
        if not text.startswith("$(") or len(named) != 1 or named[0].type not in ("command", "redirected_statement"):
            return None
        output = _static_output(named[0])
        if output is not None:  # `\echo`, `/bin/echo` and a function named either: every spelling is assumed
            self.assumed_builtins.update({"echo", "printf", "cat", _first_word(named[0])})
        return output

    def _home(self) -> str:
        return self.home if self.home is not None and self.scope.home_known else ""

    def _lookup(self, ctx: _Context) -> Callable[[str, int], str | None]:
        def lookup(name: str, offset: int) -> str | None:
            if name.isdigit():
                index = int(name)
                if index < len(ctx.positional) and not ctx.positional[index].dynamic:
                    return ctx.positional[index].text
                return None
            if name == "IFS" and not self.scope.ifs_changed:
                return " \t\n"  # bash's default: it never takes IFS from the environment
            if name == "HOME" and self.scope.home_known and "HOME" not in self.scope.assignments:
                return self.home
            if name == "PWD" and self.scope.pwd_known and "PWD" not in self.scope.assignments:
                return self.cwd
            return self._static_variable(name, offset)

        return lookup

    def _static_variable(self, name: str, offset: int) -> str | None:
        nodes = self.scope.assignments.get(name, [])
        if len(nodes) != 1 or self.scope.mentions.get(name, 0) != 1 or self.scope.ifs_changed:
            return None  # assigned twice, named elsewhere (`read x`, `for x`), or split by another IFS
        node = nodes[0]
        parent = node.parent
        if node.end_byte > offset or parent is None or parent.type not in ("program", "list", "variable_assignments"):
            return None
        value_node = node.child_by_field_name("value")
        if value_node is None:
            return ""
        env = Env(lambda sub: None, self._home(), lambda _name, _offset: None)
        env.substitution_output = self._substitution_output  # x=$(echo ~/.ssh/id_rsa)
        word = resolve(value_node, env)
        if word.dynamic or word.glob or any(char in word.text for char in " \t\n"):
            return None
        return word.text

    def _check_literal(self, word: Word, ctx: _Context) -> None:
        if not word.dynamic and "[" in word.text and _ARITHMETIC_SUBSCRIPT.search(word.text):
            self._opaque(word.text, "an array subscript with a command substitution runs it when evaluated", ctx)

    def _emit(
        self,
        argv: list[Word],
        ctx: _Context,
        *,
        assignments: tuple[str, ...],
        redirect_writes: list[Word],
        written_text: str | None = None,
        declared: bool = False,
    ) -> None:
        if ctx.depth > self.max_depth:
            raise _AnalysisError(f"the command nests deeper than {self.max_depth} levels")
        if len(self.commands) >= MAX_COMMANDS:
            raise _AnalysisError(f"the command runs more than {MAX_COMMANDS} simple commands")
        program_word, args = argv[0], argv[1:]
        dynamic = program_word.dynamic or program_word.glob
        program = program_word.text if dynamic else os.path.basename(program_word.text.rstrip("/")) or program_word.text
        for word in args:
            self._check_literal(word, ctx)
        unknowns: set[str] = set()
        if program_word.glob:
            unknowns.add("glob")
        if ctx.targets:
            unknowns.add("targets")
        writes = [word.text for word in redirect_writes]
        if program == "tee":
            writes.extend(w.text for w in args if not w.text.startswith("-") and w.text not in _HARMLESS_TARGETS)
        self.writes.extend(writes)
        facts = command_facts(
            program, args, cwd=self.cwd, home=self._home() or None, fold_case=self.fold_case, dotglob=self.scope.dotglob
        )
        unknowns |= facts.unknowns
        accesses = list(facts.accesses)
        for word in redirect_writes:
            accesses.extend(self._paths(word, "write", unknowns))
        reads, self.pending_reads = self.pending_reads, []
        for word in reads:
            accesses.extend(self._paths(word, "read", unknowns))
        if "/" in program_word.text and not dynamic:
            accesses.extend(self._paths(program_word, "exec", unknowns))
        if ctx.targets and "{}" in program_word.text:  # `find -exec nice {} ;`: the program is a found file
            dynamic = True
            program = program_word.text
        runs, wrapper_unknowns = ([], frozenset()) if dynamic else unwrap(program, args, ctx.stdin, home=self._home())
        if ctx.targets and not dynamic and is_wrapper(program) and not any(isinstance(r, Inner | Script) for r in runs):
            runs = [*runs, Opaque(program, f"{program} takes the program it runs from its input (xargs, find)")]
        runs = [*runs, *self._written_then_run(program, accesses)]
        for path, kind in accesses:
            if kind == "write":
                self.written[path] = written_text if program != "tee" else (ctx.stdin.text if ctx.stdin else None)
        opaque = [item for item in runs if isinstance(item, Opaque)]
        if opaque:
            unknowns.add("script")
        self.commands.append(
            SimpleCommand(
                text=" ".join((program, *(word.text for word in args))),
                program=program,
                args=tuple(word.text for word in args),
                assignments=assignments,
                writes=tuple(writes),
                dynamic=dynamic,
                via=ctx.via,
                unknowns=frozenset(unknowns),
                accesses=tuple(dict.fromkeys(accesses)),
                flags=tuple(dict.fromkeys(facts.flags)),
                hosts=tuple(sorted(facts.hosts)),
                subcommand=facts.subcommand,
                deletes_recursively=facts.deletes_recursively,
                why=opaque[0].why if opaque else None,
            )
        )
        self._names(program, args, ctx, declared=declared)
        self._run_wrapped(runs, ctx, targets=ctx.targets or "targets" in wrapper_unknowns)

    def _written_then_run(self, program: str, accesses: list[tuple[str, str]]) -> list[Unwrapped]:
        """`echo CMD > f; sh f`, `cat <<X > f.sh ... X; ./f.sh`: the file's text when the line shows it, else unseen."""
        shell = family(program) in SHELLS or program in (".", "source")
        found: list[Unwrapped] = []
        for path, kind in accesses:
            if path not in self.written or not (kind == "exec" or (shell and kind in ("use", "read"))):
                continue
            text = self.written[path]
            if text is None:
                found.append(Opaque(program, f"{program} runs {path}, which this line writes"))
            elif not (text.startswith("#!") and family(text[2:].split()[-1].rsplit("/", 1)[-1]) not in SHELLS):
                found.append(Script(f"{program} {path}", text))
        return found

    def _names(self, program: str, args: Sequence[Word], ctx: _Context, *, declared: bool) -> None:
        """What a name means besides its program: a fork-bomb function, an alias, a `hash -p` entry, a function."""
        if ctx.function is not None and program == ctx.function and ctx.spawned:
            self.self_spawning.add(program)
        if program == "hash":
            self._hash(args, ctx)
        if program in _SETS_VARIABLES and any(self._sets_special(program, word) for word in args):
            self._opaque(f"{program} ...", f"{program} sets a variable bash or other programs run as code", ctx)
        if program == "printf" and any(w.text.startswith("-v") for w in args) and any("[" in w.text for w in args):
            self._opaque("printf -v", "printf -v builds a value that arithmetic may evaluate as code", ctx)
        if program in _DECLARES:
            for word in args:
                if _dynamic_name(word):  # `export $x=CMD`: x may be GIT_SSH_COMMAND, BASH_ALIASES[...], ...
                    self._opaque(
                        f"{program} {word.text}", f"{program} sets a variable whose name is only known at run time", ctx
                    )
        if program in _DECLARES and not declared:
            for word in args:  # `command export X=...`, `expo""rt X=...`: assignments tree-sitter did not see
                name, equals, value = word.text.partition("=")
                if equals and _ASSIGNABLE.match(name.rstrip("+")):
                    self._environment(name.rstrip("+"), Word(value, word.dynamic), ctx)
        if program == "shopt" and any(word.dynamic for word in args):
            raise _AnalysisError("the line sets shell options only known at run time")
        seen = {"cdable_vars": self.scope.cd_searches, "dotglob": self.scope.dotglob}
        if program == "shopt" and any(not seen.get(word.text, True) for word in args):
            raise _AnalysisError("the line changes how cd or wildcards work in a way keycardd did not see")
        if program in ("set", "shopt") and not self.scope.braces_off and any(_BRACES_OFF.search(w.text) for w in args):
            raise _AnalysisError("the line turns brace expansion off in a way keycardd did not see before walking it")
        if program == "set" and any(
            word.dynamic
            or (word.text.startswith("-") and not word.text.startswith("--") and ("H" in word.text or "k" in word.text))
            or word.text in ("histexpand", "keyword")
            for word in args
        ):  # history expansion, or `set -k` (every NAME=VALUE argument becomes the command's environment)
            raise _AnalysisError("the line turns on a shell option that changes how later words are read")
        alias = self.aliases.get(program)
        if alias is not None and program not in self.expanding_aliases:  # `alias e=eval; e 'CMD'`
            self.expanding_aliases.add(program)
            try:
                quoted = " ".join(shlex.quote(word.text) for word in args if not word.dynamic)
                self.script(f"{alias} {quoted}", replace(ctx, depth=ctx.depth + 1, via=(*ctx.via, f"alias {program}")))
            finally:
                self.expanding_aliases.discard(program)
        if program == "alias":
            self._record_aliases(args)
        hashed = self.hashed.get(program)
        if hashed is not None and hashed != program:  # `hash -p /bin/rm ls` earlier: this `ls` runs rm
            self._emit(
                [Word(hashed), *args], replace(ctx, via=(*ctx.via, "hash -p")), assignments=(), redirect_writes=[]
            )
        if program in self.functions and program not in self.walking_functions and ctx.stdin is not None:
            self.walking_functions.add(program)  # a function fed stdin: its shells read it
            try:
                self._walk(self.functions[program], replace(ctx, depth=ctx.depth + 1, function=program))
            finally:
                self.walking_functions.discard(program)

    def _run_wrapped(self, runs: list[Unwrapped], ctx: _Context, *, targets: bool) -> None:
        """What a wrapper runs: scripts parsed one level deeper, argvs emitted, unseen code recorded."""
        for item in runs:
            if isinstance(item, Opaque):
                self._opaque(item.text or item.label, item.why, replace(ctx, via=(*ctx.via, item.label)))
                continue
            inner = replace(ctx, depth=ctx.depth + 1, via=(*ctx.via, item.label), top=False)
            if isinstance(item, Inner) and item.stdin != INHERIT:  # inline code's effects: see _effects.RunsArgv
                inner = replace(inner, stdin=None if item.stdin == NO_STDIN else Stdin(None, item.stdin))
            for assignment in item.assignments if isinstance(item, Inner) else ():
                name, _, value = assignment.partition("=")
                self._environment(name, Word(value), inner)  # `env BASH_ENV=/dev/stdin bash -c :`
            if isinstance(item, Script):
                braces = inner.braces and _run_by_this_bash(item.label)
                self.script(item.text, replace(inner, positional=item.positional, function=None, braces=braces))
            elif item.argv:
                self._emit(
                    list(item.argv), replace(inner, targets=targets), assignments=item.assignments, redirect_writes=[]
                )

    def _run(self, item: Script | Opaque, ctx: _Context) -> None:
        if isinstance(item, Opaque):
            self._opaque(item.label, item.why, ctx)
        else:
            braces = ctx.braces and _run_by_this_bash(item.label)
            self.script(
                item.text, replace(ctx, depth=ctx.depth + 1, via=(*ctx.via, item.label), top=False, braces=braces)
            )

    def _opaque(self, text: str, why: str, ctx: _Context) -> None:
        """Record code the line runs but does not show: policies see a command with the unknown "script"."""
        if len(self.commands) >= MAX_COMMANDS:
            raise _AnalysisError(f"the command runs more than {MAX_COMMANDS} simple commands")
        short = text if len(text) <= 200 else text[:200] + "..."
        self.commands.append(
            SimpleCommand(text=short, program=short, dynamic=True, via=ctx.via, unknowns=frozenset({"script"}), why=why)
        )

    def _paths(self, word: Word, access: str, unknowns: set[str]) -> list[tuple[str, str]]:
        """The canonical paths a redirect or a `<` names (for a word only known at run time: its pattern)."""
        facts = command_facts(
            "", [Word("--"), word], cwd=self.cwd, home=self._home() or None, fold_case=self.fold_case,
            dotglob=self.scope.dotglob,
        )  # fmt: skip
        unknowns |= facts.unknowns
        return [(path, access) for path, _ in facts.accesses]

    def _sets_special(self, program: str, word: Word) -> bool:
        """A nameref (`declare -n`), or a name whose value runs as code (`read GIT_SSH_COMMAND`, BASH_ALIASES[x])."""
        text = word.text
        if word.dynamic and program != "export":
            return program in ("declare", "typeset", "local")  # `declare "$x"`: any name at all
        if program in ("declare", "typeset", "local") and text.startswith("-") and "n" in text[1:]:
            return True
        declares = program in ("export", "declare", "typeset", "local", "readonly")
        if declares:  # a NAME=VALUE here is checked as an assignment; a bare NAME keeps the value it has
            return ("BASH_ALIASES" in text or "BASH_CMDS" in text) and "=" not in text
        name = text.split("[", 1)[0]  # read, mapfile, printf -v, getopts, let: a value only known at run time
        return (
            "BASH_ALIASES" in text
            or "BASH_CMDS" in text
            or name.startswith("BASH_FUNC_")
            or name in _COMMAND_VARIABLES
            or name in _CODE_VARIABLES
            or name in _PROMPT_VARIABLES
        )

    def _record_aliases(self, args: Sequence[Word]) -> None:
        for word in args:
            name, equals, value = word.text.partition("=")
            if equals and not word.dynamic:
                self.aliases[name] = value

    def _hash(self, args: Sequence[Word], ctx: _Context) -> None:
        """`hash -p /bin/rm ls` (or `-p/bin/rm`): later `ls` runs /bin/rm."""
        parsed = parse_options(args, Grammar("p"))
        path = parsed.value("-p")
        if not parsed.has("-p"):
            return
        names = args[parsed.index :]
        if parsed.dynamic or path is None or path.dynamic or any(name.dynamic for name in names):
            self._opaque("hash -p", "hash -p maps a name to a program only known at run time", ctx)
            return
        for name in names:
            self.hashed[name.text] = os.path.basename(path.text.rstrip("/")) or path.text
            self.hashed_at.setdefault(name.text, len(self.commands))


def _run_by_this_bash(label: str) -> bool:
    """Whether a wrapper's string is read by bash (`bash -c`, `eval`, an alias), which expands braces; `sh -c`,
    `ssh host CMD`, `watch`, `$GIT_SSH_COMMAND` run it in another shell (dash has no brace expansion)."""
    first = label.split(" ", 1)[0]
    return first in _BASH_EVALUATORS or first.startswith("BASH_FUNC_") or family(first) in ("bash", "rbash")


def _unsplit(word: Word, node: Node) -> Word:
    """A word read whole where bash may split it (tree-sitter cut it in two): blanks from an expansion make it
    unknown, since bash would split there."""
    if "$" in node_text(node) and re.search(r"[ \t\n]", word.text):
        return replace(word, dynamic=True)
    return word


def _unnamed_token(node: Node) -> Word:
    """Text tree-sitter left as an unnamed token in a command: `-exe$` before `""c` is `-exe` and the `$` of `$""`
    (an empty translated string, which the next node is); anything else is only known at run time."""
    text = node_text(node)
    following = node.next_sibling
    if following is not None and following.type == "concatenation" and following.children:
        following = following.children[0]  # `-exe$""c`: the string starts a concatenation
    adjacent = following is not None and following.type == "string" and following.start_byte == node.end_byte
    if text.endswith("$") and adjacent:
        return Word(_unescape_plain(text[:-1]))
    return Word(text, dynamic=True)


def _unescape_plain(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text, flags=re.DOTALL)


def _hidden_substitutions(node: Node) -> str | None:
    """Where tree-sitter leaves a command substitution as text that bash still runs; None when there is none.

    `[[ x =~ $(cmd) ]]` (a `regex` node), `${x:-'$(cmd)'}` inside double quotes or a heredoc (a quoted string in an
    expansion), and `a['$(cmd)']` (a subscript bash evaluates twice).
    """
    stack = [node]
    while stack:
        current = stack.pop()
        kind = current.type
        text = node_text(current)
        if "$(" not in text and "`" not in text:
            continue
        if kind == "regex":
            return "a command substitution in a [[ =~ ]] pattern"
        if kind in ("expansion", "subscript") and _unparsed_substitution(current):
            return "a quoted command substitution inside an expansion or subscript"
        stack.extend(current.children)
    return None


def _quoted_subscript_code(node: Node) -> bool:
    """A quoted `a[$(cmd)]` somewhere under `node` (`[[ 'a[$(cmd)]' -eq 1 ]]`: the test evaluates it)."""
    stack = [node]
    while stack:
        current = stack.pop()
        if current.type in ("raw_string", "string_content", "ansi_c_string"):
            if _ARITHMETIC_SUBSCRIPT.search(node_text(current)):
                return True
            continue
        stack.extend(current.children)
    return False


def _unparsed_substitution(node: Node) -> bool:
    """Whether text under `node` that tree-sitter left unparsed (quoted strings, words) holds `$(` or a backquote."""
    stack = list(node.children)
    while stack:
        current = stack.pop()
        if current.type == "command_substitution":
            continue
        if current.type in ("raw_string", "ansi_c_string", "word", "string_content"):
            text = node_text(current)
            if "$(" in text or "`" in text:
                return True
            continue
        stack.extend(current.children)
    return False


def _unparsed_backquotes(node: Node) -> list[str]:
    """Texts of the word nodes under `node` (outside parsed substitutions) that still hold a backquote."""
    found = []
    stack = [node]
    while stack:
        current = stack.pop()
        if current.type in ("command_substitution", "raw_string", "ansi_c_string"):
            continue
        if current.type in ("word", "string_content", "heredoc_content") and "`" in node_text(current):
            found.append(node_text(current))
            continue
        stack.extend(current.children)
    return found


def _backquoted(text: str) -> list[str]:
    """The bodies of the backquoted command substitutions in `text` (a backslash quotes the next character)."""
    segments: list[str] = []
    current: list[str] | None = None
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\":
            if current is not None:
                current.append(text[index : index + 2])
            index += 2
            continue
        if char == "`":
            if current is None:
                current = []
            else:
                segments.append("".join(current))
                current = None
        elif current is not None:
            current.append(char)
        index += 1
    if current is not None:
        raise _AnalysisError("a backquote in a here-document is not closed")
    return segments


def _loads_code(name: str, value: str) -> bool:
    """NODE_OPTIONS=--max-old-space-size=4096 is a setting; NODE_OPTIONS=--require=x.js loads code."""
    if name == "NODE_OPTIONS":
        return bool(re.search(r"(?:^|\s)(?:-r|--require|--import|--loader|--experimental-loader)\b", value))
    if name == "RUBYOPT":
        return "-r" in value
    return True


def _scope(tree: Tree, source: bytes, inherit: _Scope | None) -> _Scope:
    """Collect assignments and bare mentions of each variable name, for `_Walker._static_variable`."""
    scope = _Scope(source=source)
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.type == "variable_assignment":
            name_node = node.child_by_field_name("name")
            if name_node is not None:
                name = source[name_node.start_byte : name_node.end_byte].decode("utf-8", "surrogatepass")
                scope.assignments.setdefault(name, []).append(node)
        stack.extend(node.children)
    text = source.decode("utf-8", "surrogatepass")
    if scope.assignments:  # one pass over the text, not one per name: 3,000 assignments took seconds
        tokens = Counter(_BARE_NAME.findall(text))
        for name in scope.assignments:
            scope.mentions[name] = tokens[name]
    scope.home_known = not re.search(r"(?<![\w$\{])HOME(?!\w)", text) and (inherit is None or inherit.home_known)
    scope.pwd_known = not re.search(r"(?<![\w$\{])PWD(?!\w)", text)
    scope.ifs_changed = bool(re.search(r"(?<![\w$\{])IFS(?!\w)", text)) or (inherit is not None and inherit.ifs_changed)
    scope.braces_off = bool(_BRACES_OFF.search(text)) or (inherit is not None and inherit.braces_off)
    scope.cd_searches = "CDPATH" in text or "cdable_vars" in text or (inherit is not None and inherit.cd_searches)
    scope.dotglob = "dotglob" in text or "GLOBIGNORE" in text or (inherit is not None and inherit.dotglob)
    return scope


def _check_node_types(root: Node, source: bytes) -> None:
    """Every named node type must be in `_KNOWN`; and the places where tree-sitter is known to read a line
    differently from bash (across a newline, an assignment bash would run as a command) make it unparseable."""
    stack = [root]
    while stack:
        node = stack.pop()
        kind = node.type
        if node.is_named and kind not in _KNOWN:
            raise _AnalysisError(f"keycardd does not understand the shell construct `{kind}`")
        if kind == "word" and b"\n" in source[node.start_byte : node.end_byte]:
            raise _AnalysisError("tree-sitter reads a newline inside a word, where bash ends the command")
        if kind == "command":
            children = node.children
            for before, after in itertools.pairwise(children):
                gap = source[before.end_byte : after.start_byte]
                if b"\n" in gap:
                    raise _AnalysisError("tree-sitter reads a command across a newline, where bash ends it")
                if gap.strip():  # `{a,b}\ {c,d}`: tree-sitter drops the escaped blank that joins one bash word
                    raise _AnalysisError("tree-sitter skips text between two words of a command")
                if before.type == "variable_assignment" and before.end_byte == after.start_byte:
                    raise _AnalysisError("tree-sitter splits an assignment's value from what follows it")
            first = node.named_children[0] if node.named_children else None
            if first is not None and first.type == "command_name" and node_text_of(first, source) in _RESERVED:
                raise _AnalysisError(
                    f"`{node_text_of(first, source)}` is a reserved word where tree-sitter sees a program"
                )
        if kind == "heredoc_redirect":
            _check_heredoc_end(node, source)
        if kind == "test_command" and node.children and node.children[0].type == "[" and _newline_between(node, source):
            raise _AnalysisError("tree-sitter reads a `[` test across a newline, where bash ends the command")
        if kind == "variable_assignment":
            name = node.child_by_field_name("name")
            if name is not None and name.type == "variable_name" and not _NAME.match(node_text_of(name, source)):
                raise _AnalysisError("tree-sitter reads an assignment where bash runs a command")
        stack.extend(node.children)


def _newline_between(node: Node, source: bytes) -> bool:
    """Whether a newline separates two of `node`'s descendants (not one inside a quoted string)."""
    leaves: list[Node] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if current.child_count == 0 or current.type in (
            "string",
            "raw_string",
            "ansi_c_string",
            "command_substitution",
        ):
            leaves.append(current)
        else:
            stack.extend(current.children)
    leaves.sort(key=lambda leaf: leaf.start_byte)
    return any(b"\n" in source[a.end_byte : b.start_byte] for a, b in itertools.pairwise(leaves))


def _check_heredoc_end(node: Node, source: bytes) -> None:
    """The line tree-sitter ends a here-document at must be its delimiter exactly (bash reads `E\\<newline>OF` as
    body text when the delimiter is quoted, and runs on to the end of the input)."""
    start = next((c for c in node.named_children if c.type == "heredoc_start"), None)
    end = next((c for c in node.named_children if c.type == "heredoc_end"), None)
    if start is None or end is None:
        return
    delimiter = re.sub(r"[\\'\"]", "", node_text_of(start, source))
    if node_text_of(end, source).lstrip("\t") != delimiter:
        raise _AnalysisError("tree-sitter ends a here-document where bash does not")


def _join_continuations(text: str, tree: Tree, source: bytes) -> str | None:
    """Remove backslash-newlines outside single quotes, comments and quoted heredoc bodies, as bash's reader does."""
    if "\\\n" not in text:
        return None
    literal: list[tuple[int, int]] = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.type in ("raw_string", "comment", "ansi_c_string"):
            literal.append((node.start_byte, node.end_byte))
            continue
        if node.type == "heredoc_redirect":
            start = next((c for c in node.named_children if c.type == "heredoc_start"), None)
            body = next((c for c in node.named_children if c.type == "heredoc_body"), None)
            if start is not None and body is not None and any(m in node_text_of(start, source) for m in "'\"\\"):
                literal.append((body.start_byte, body.end_byte))
        stack.extend(node.children)
    literal.sort()
    out = bytearray()
    index = 0
    span = 0
    changed = False
    while index < len(source):
        while span < len(literal) and literal[span][1] <= index:
            span += 1
        if span < len(literal) and literal[span][0] <= index < literal[span][1]:
            out += source[index : literal[span][1]]
            index = literal[span][1]
            continue
        byte = source[index]
        if byte == 0x5C and index + 1 < len(source):
            if source[index + 1] == 0x0A:
                index += 2
                changed = True
                continue
            out += source[index : index + 2]
            index += 2
            continue
        out.append(byte)
        index += 1
    return out.decode("utf-8", "surrogatepass") if changed else None


def _drop_keyword_prefixes(text: str, tree: Tree, source: bytes) -> str | None:
    """`time { ...; }` and `coproc NAME { ...; }` are bash keywords tree-sitter reads as commands: blank them out."""
    spans: list[tuple[int, int, str]] = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        stack.extend(node.children)
        if node.type != "command":
            continue
        named = node.named_children
        if not named or named[0].type != "command_name":
            continue  # a prefix assignment makes `time` an ordinary program name
        keyword = node_text_of(named[0], source)
        if keyword not in _KEYWORD_PREFIXES:
            continue
        if keyword == "coproc" and _inside_substitution(node):
            raise _AnalysisError("a coproc inside a substitution: bash reads it differently from tree-sitter")
        parent = node.parent
        if keyword == "time" and parent is not None and parent.type == "pipeline" and parent.named_children[0] != node:
            continue  # `a | time b`: not at a pipeline's start, `time` is the program /usr/bin/time
        end = named[0].end_byte
        rest = named[1:]
        if keyword == "time":
            while rest and node_text_of(rest[0], source) in ("-p", "--"):
                end = rest[0].end_byte
                rest = rest[1:]
        elif len(rest) >= 2 and node_text_of(rest[1], source) in _COMPOUND_STARTS:
            end = rest[0].end_byte  # coproc NAME { ...; }
        elif rest and node_text_of(rest[0], source) == "time":
            spans.append((rest[0].start_byte, rest[0].end_byte, "\\time"))  # `coproc time x` runs /usr/bin/time
        spans.append((named[0].start_byte, end, ""))
    if not spans:
        return None
    out = bytearray(source)
    for start, end, replacement in sorted(spans, reverse=True):  # from the end, so earlier offsets stay valid
        out[start:end] = replacement.encode() if replacement else b" " * (end - start)
    return out.decode("utf-8", "surrogatepass")


def _inside_substitution(node: Node) -> bool:
    parent = node.parent
    while parent is not None:
        if parent.type in ("command_substitution", "process_substitution"):
            return True
        parent = parent.parent
    return False


def node_text_of(node: Node, source: bytes) -> str:
    return source[node.start_byte : node.end_byte].decode("utf-8", "surrogatepass")


def _simple_escapes(text: str) -> str | None:
    """Backslash-n, backslash-t and a doubled backslash as echo -e and printf read them; any other escape (octal,
    backslash-c, ...) differs between echo, printf and $'...' in ways not worth modelling: unknown."""
    if re.search(r"\\[^nt\\]", text):
        return None
    return text.replace("\\n", "\n").replace("\\t", "\t").replace("\\\\", "\\")


def _static_output(node: Node, *, ignore_writes: bool = False) -> str | None:
    """What a pipeline element writes, when the line shows it: `echo 'CMD'`, `printf 'CMD'`, `cat <<X ... X`."""
    redirects: list[Node] = []
    if node.type == "redirected_statement":
        body = node.child_by_field_name("body")
        redirects = [child for child in node.named_children if child != body]
        node = body if body is not None else node
    if node.type != "command":
        return None
    redirects += [
        c for c in node.named_children if c.type in ("heredoc_redirect", "herestring_redirect", "file_redirect")
    ]
    words = [
        c
        for c in node.named_children
        if c.type not in ("heredoc_redirect", "herestring_redirect", "file_redirect", "variable_assignment")
    ]
    if not words or words[0].type != "command_name":
        return None
    env = Env(lambda sub: None, "", lambda _name, _offset: None)
    argv = [resolve(words[0].named_children[0], env) if words[0].named_children else Word("")]
    argv += [resolve(word, env) for word in words[1:]]
    if any(word.dynamic or word.glob for word in argv):
        return None
    if not ignore_writes and any(r.type == "file_redirect" for r in redirects):
        return None
    redirects = [r for r in redirects if r.type != "file_redirect"]
    program, args = os.path.basename(argv[0].text), [word.text for word in argv[1:]]
    if program == "echo":
        escapes = False
        while args and re.fullmatch(r"-[neE]+", args[0]):
            escapes = escapes or "e" in args[0]
            args = args[1:]
        text = " ".join(args)
        if "\\" in text:
            return _simple_escapes(text) if escapes else None  # bash's echo keeps `\e`, dash's makes it ESC
        return text + "\n"
    if program == "printf" and args and "%" not in args[0] and len(args) == 1:
        return _simple_escapes(args[0])
    if program == "cat" and not args and len(redirects) == 1:
        redirect = redirects[0]
        if redirect.type == "heredoc_redirect":
            start = next((c for c in redirect.named_children if c.type == "heredoc_start"), None)
            body = next((c for c in redirect.named_children if c.type == "heredoc_body"), None)
            quoted = start is not None and any(mark in node_text(start) for mark in "'\"\\")
            if body is not None and (
                quoted
                or (
                    body.named_child_count <= 1
                    and "$" not in node_text(body)
                    and "`" not in node_text(body)
                    and "\\" not in node_text(body)
                )
            ):
                return node_text(body)
        if redirect.type == "herestring_redirect":
            parts = [resolve(child, env) for child in redirect.named_children]
            if not any(part.dynamic for part in parts):
                return " ".join(part.text for part in parts) + "\n"
    return None


def _first_word(node: Node) -> str:
    """The program word of a command (or of a redirected statement's command), as spelt."""
    if node.type == "redirected_statement":
        body = node.child_by_field_name("body")
        node = body if body is not None else node
    name = next((child for child in node.named_children if child.type == "command_name"), None)
    return node_text(name) if name is not None else ""


def _error_excerpt(root: Node, source: bytes) -> str:
    stack = [root]
    while stack:
        node = stack.pop()
        if node.type == "ERROR" or node.is_missing:
            return node_text_of(node, source)[:40] or node.type
        stack.extend(reversed(node.children))
    return "?"


def _adjacent_groups(nodes: Sequence[Node]) -> list[list[Node]]:
    """Nodes with no blank between them, grouped: bash reads each group as one word."""
    groups: list[list[Node]] = []
    for node in nodes:
        if groups and groups[-1][-1].end_byte == node.start_byte:
            groups[-1].append(node)
        else:
            groups.append([node])
    return groups


def _dynamic_name(word: Word) -> bool:
    """A `declare`/`export` argument whose variable name is only known at run time (`$x=...`, `$x`)."""
    if not word.dynamic or word.text.startswith("-"):
        return False
    name = word.text.partition("=")[0]
    return any(mark in name for mark in ("$", "`"))
