"""A reader for the PowerShell agents write: statements, pipelines, commands, words, strings, blocks.

It is not a full PowerShell parser and does not pretend to be. It reads a documented subset exactly (commands and
their words in argument mode; strings with `$var` and `$(...)`; `(...)`, `$(...)`, `@(...)`, `{...}` and `@{...}`;
`if`/`elseif`/`else`, `foreach`, `for`, `while`, `do`, `try`/`catch`/`finally`, `function`; assignments; simple
expressions with operators, property access and the .NET calls in `_names`), and everything outside it is either
an error (`PowerShellError`: the line is unparseable) or code it cannot see (`HiddenCode`: a dynamic program name,
`Invoke-Expression` of something not literal, a .NET method call it does not know). Both are denied by default.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol

from keycardd.powershell import _names

MAX_DEPTH = 24
MAX_COMMANDS = 1000
DASHES = "-\u2013\u2014\u2015"
"""PowerShell reads en dash, em dash and horizontal bar as `-` in parameters and operators."""
SINGLE_QUOTES = "'\u2018\u2019\u201a\u201b"
DOUBLE_QUOTES = '"\u201c\u201d\u201e'
"""PowerShell reads the typographic quotes as quotes: `rm -r \u2018~\u2019` is `rm -r '~'`."""
_EOF = "\uffff"
"""What `peek` returns past the end: a noncharacter, so `peek() in "..."` is never true there."""
_STATEMENT_END = ";\n\r"
_SPACES = " \t\f\v\u0085\u00a0\u1680\u202f\u205f\u3000\u2028\u2029" + "".join(map(chr, range(0x2000, 0x200B)))
"""PowerShell's whitespace (language specification 2.2.4): tab, vertical tab, form feed, NEL and the Unicode
classes Zs, Zl and Zp, so `rm\u00a0-r ~` is `rm -r ~`."""
_WORD_END = _SPACES + ";|&(){},<>\n\r"
_BACKTICK = {"0": "\0", "a": "\a", "b": "\b", "e": "\x1b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_KEYWORDS = {
    "if": "_if", "foreach": "_foreach", "for": "_for", "while": "_while", "do": "_do", "try": "_try",
    "function": "_function", "filter": "_function", "return": "_flow", "exit": "_flow", "throw": "_flow",
    "break": "_flow", "continue": "_flow", "param": "_param", "begin": "block", "process": "block", "end": "block",
}  # fmt: skip
"""Statement keywords and the method that reads the rest of the statement (`begin`/`process`/`end`: a block)."""
_UNSUPPORTED = ("switch", "trap", "class", "enum", "data", "using", "workflow", "parallel", "sequence",
                "inlinescript", "configuration", "dynamicparam")  # fmt: skip
_REDIRECT = re.compile(r"(?:[1-6*])?>>?(?:&[12])?")
_STOP_PARSING = re.compile(r"--%([^\r\n|]*)")
_PARAMETER = re.compile(r"[A-Za-z_?][\w?\-]*")
_HERE_STRING = re.compile(r"@.[ \t]*\r?\n")
_HASH_KEY = re.compile(r"[\w.\-]+")
_NUMBER = re.compile(r"[0-9.][\w.]*")
_LETTERS = re.compile(r"[A-Za-z]+")
_MEMBER = re.compile(r"[A-Za-z_][\w]*")
_DRIVE_PATH = re.compile(r"^[A-Za-z]:[\\/]")
_ASSIGNMENT = re.compile(r"(?:\?\?|[+\-*/%])?=(?!=)")
_VARIABLE_NAME = re.compile(r"[A-Za-z0-9_?]+(?::[A-Za-z0-9_]+)?|[$^?_]")


class PowerShellError(Exception):
    """The line uses PowerShell outside the subset read here, or is not valid PowerShell."""


class HiddenCode(Exception):
    """The line runs code whose text is not on the line (or a call keycardd cannot see into)."""


@dataclass(frozen=True, slots=True)
class Word:
    text: str | None
    """The value PowerShell passes, or None when it is only known when the line runs."""
    source: str
    block: bool = False
    """A script block `{...}` (its commands are already collected)."""
    parameter: str | None = None
    """For `-Name` / `-Name:value`: the name as written, lower case, without the dash."""
    attached: Word | None = None
    """For `-Name:value`: the value."""
    continued: bool = False
    """After a comma: another element of the previous word's array (`-ArgumentList "-c", "x"`)."""


@dataclass(frozen=True, slots=True)
class PsCommand:
    """One command the line would run, as a policy sees it."""

    program: str
    """Lower case: a cmdlet's full name after alias resolution (`remove-item` for `rm`), a native program's name
    without `.exe`, or a script's file name."""
    text: str
    args: tuple[str, ...] = ()
    """Parameters as `-fullname` where the cmdlet's parameters are known (`-r` is `-recurse`), then values."""
    paths: tuple[str, ...] = ()
    """Static words that name files, as written (resolved `~`, `$HOME`, `$env:USERPROFILE`; not yet canonical)."""
    access: str = "use"
    writes: tuple[str, ...] = ()
    urls: tuple[str, ...] = ()
    unknowns: tuple[str, ...] = ()
    via: tuple[str, ...] = ()
    recursive: bool = False
    """A delete that descends into directories: `-Recurse` (or parameters only known at run time), `rm -r`."""


class Builder(Protocol):
    """Turns a command the reader found into `PsCommand`s (`_commands.Command`: what a command does)."""

    def __call__(
        self,
        reader: Reader,
        name: str,
        words: list[Word],
        writes: list[str],
        *,
        piped_input: bool,
        upstream: PsCommand | None,
        call: str,
        unknown_writes: bool,
    ) -> object: ...


@dataclass
class State:
    """What one line's analysis accumulates, shared by the readers of the strings it runs."""

    build: Builder
    commands: list[PsCommand] = field(default_factory=list)
    downloaded: set[str] = field(default_factory=set)
    location: str | None = None
    """Where `Set-Location`/`cd` moved to, as written (`~`, `..\\x`); None while it is the payload's cwd."""
    functions: set[str] = field(default_factory=set)
    """Functions the line defines: calling one may set variables and move the location (its body's scope)."""
    location_known: bool = True
    """False after a `cd` to a place known only at run time (or one inside a block): relative paths are unknown."""


class Reader:
    """Reads one PowerShell text; `Reader(line).run()` returns every command it would run."""

    def __init__(
        self,
        text: str,
        *,
        state: State,
        depth: int = 0,
        via: tuple[str, ...] = (),
        variables: dict[str, str | None] | None = None,
    ) -> None:
        if depth > MAX_DEPTH:
            raise PowerShellError(f"the command nests more than {MAX_DEPTH} levels deep")
        self.s = text
        self.i = 0
        self.state = state
        self.depth = depth
        self.via = via
        self.variables: dict[str, str | None] = dict(variables or {})
        self.variables_known = True
        self.nesting = 0
        """How many blocks and parentheses the cursor is inside: assignments there are conditional."""

    def run(self) -> list[PsCommand]:
        self.statements(None)
        return self.state.commands

    # ---- low level ---------------------------------------------------------------------------------------------

    def peek(self, offset: int = 0) -> str:
        """The character at the cursor (plus `offset`), or `_EOF`, which no character class contains."""
        index = self.i + offset
        return self.s[index] if index < len(self.s) else _EOF

    def skip_space(self, *, newlines: bool = False) -> None:
        while self.i < len(self.s):
            char = self.s[self.i]
            if char in _SPACES or (newlines and char in "\r\n"):
                self.i += 1
            elif char == "`" and self.peek(1) in ("\n", "\r"):  # line continuation
                self.i += 2
            elif char == "#":
                while self.i < len(self.s) and self.s[self.i] not in "\r\n":
                    self.i += 1
            elif char == "<" and self.peek(1) == "#":
                end = self.s.find("#>", self.i + 2)
                if end < 0:
                    raise PowerShellError("a `<#` comment is not closed")
                self.i = end + 2
            else:
                return

    def keyword(self, *words: str) -> str | None:
        """The keyword at the cursor (case-insensitive, ending at a non-name character), without consuming it."""
        for word in words:
            end = self.i + len(word)
            if self.s[self.i : end].lower() == word and (end >= len(self.s) or not _name_char(self.s[end])):
                return word
        return None

    def expect(self, char: str) -> None:
        self.skip_space(newlines=True)
        if self.peek() != char:
            found = "the end of the line" if self.peek() == _EOF else repr(self.peek())
            raise PowerShellError(f"expected `{char}` at character {self.i + 1}, found {found}")
        self.i += 1

    def at_end(self, ends: str) -> bool:
        return self.i >= len(self.s) or self.peek() in ends

    # ---- statements --------------------------------------------------------------------------------------------

    def statements(self, end: str | None) -> None:
        """Statements up to `end` (consumed) or the end of the text."""
        if end is None:
            self._statements(None)
            return
        self.nesting += 1
        try:
            self._statements(end)
        finally:
            self.nesting -= 1

    def _statements(self, end: str | None) -> None:
        while True:
            self.skip_space(newlines=True)
            if self.peek() == ";":
                self.i += 1
                continue
            if self.i >= len(self.s):
                if end is not None:
                    raise PowerShellError(f"`{_OPENERS[end]}` is not closed")
                return
            if end is not None and self.peek() == end:
                self.i += 1
                return
            if self.peek() in ")}]":
                raise PowerShellError(f"unexpected `{self.peek()}` at character {self.i + 1}")
            self.statement()
            self.skip_space()
            if self.peek() == "&" and self.peek(1) != "&":  # `cmd &` runs it as a background job
                self.i += 1
                self.skip_space()
            if not self.at_end(_STATEMENT_END + (end or "")):
                raise PowerShellError(f"unexpected {self.peek()!r} at character {self.i + 1}")

    def statement(self) -> None:
        word = self.keyword(*_KEYWORDS, *_UNSUPPORTED)
        if word in _UNSUPPORTED:
            raise PowerShellError(f"PowerShell `{word}` statements are not analysed")
        if word == "foreach" and not self._followed_by("("):
            word = None  # `foreach { ... }` is the ForEach-Object alias
        if word is None:
            self.pipeline()
            return
        self.i += len(word)
        getattr(self, _KEYWORDS[word])()

    def _if(self) -> None:
        self.condition()
        self.block()
        while True:
            mark = self.i
            self.skip_space(newlines=True)
            branch = self.keyword("elseif", "else")
            if branch is None:
                self.i = mark
                return
            self.i += len(branch)
            if branch == "elseif":
                self.condition()
            self.block()
            if branch == "else":
                return

    def _foreach(self) -> None:
        self.expect("(")
        self.skip_space(newlines=True)
        self.variables[self.variable_word()] = None
        self.skip_space(newlines=True)
        if self.keyword("in") is None:
            raise PowerShellError("expected `in` in a foreach statement")
        self.i += 2
        self.pipeline()
        self.expect(")")
        self.block()

    def _for(self) -> None:
        self.expect("(")
        self.statements(")")
        self.block()

    def _while(self) -> None:
        self.condition()
        self.block()

    def _do(self) -> None:
        self.block()
        self.skip_space(newlines=True)
        loop = self.keyword("while", "until")
        if loop is None:
            raise PowerShellError("expected `while` or `until` after a do block")
        self.i += len(loop)
        self.condition()

    def _try(self) -> None:
        self.block()
        self._catch_finally()

    def _function(self) -> None:
        self.skip_space()
        name = self.argument()
        if name.text is None:
            raise HiddenCode("a function whose name is only known when the line runs")
        self.state.functions.add(name.text.lower().rpartition(":")[2])  # `function global:f` is `f`
        self.skip_space(newlines=True)
        if self.peek() == "(":
            self.i += 1
            self.statements(")")
        self.block()

    def _flow(self) -> None:
        """`return`, `exit`, `throw`: an optional pipeline; `break`, `continue`: an optional label."""
        self.skip_space()
        if not self.at_end(_STATEMENT_END + ")}"):
            self.pipeline()

    def _param(self) -> None:
        self.expect("(")
        self.statements(")")

    def _catch_finally(self) -> None:
        while True:
            mark = self.i
            self.skip_space(newlines=True)
            clause = self.keyword("catch", "finally")
            if clause is None:
                self.i = mark
                return
            self.i += len(clause)
            self.skip_space()
            while clause == "catch" and self.peek() == "[":
                self.type_literal()
                self.skip_space()
                if self.peek() == ",":
                    self.i += 1
                    self.skip_space(newlines=True)
            self.block()

    def _followed_by(self, char: str) -> bool:
        index = self.i + len("foreach")
        while index < len(self.s) and self.s[index] in " \t":
            index += 1
        return index < len(self.s) and self.s[index] == char

    def condition(self) -> None:
        self.expect("(")
        self.statements(")")

    def block(self) -> None:
        self.expect("{")
        self.statements("}")

    # ---- pipelines and commands ----------------------------------------------------------------------------------

    def pipeline(self) -> None:
        """Elements joined by `|`, pipelines joined by `&&` / `||`."""
        piped = False
        upstream: PsCommand | None = None
        while True:
            self.skip_space()
            before = len(self.state.commands)
            is_command = self.element(piped_input=piped, upstream=upstream if piped else None)
            upstream = self.state.commands[-1] if is_command and len(self.state.commands) > before else None
            self.skip_space()
            if self.peek() == "|" and self.peek(1) != "|":
                self.i += 1
                self.skip_space(newlines=True)
                piped = True
                continue
            if self.s.startswith(("&&", "||"), self.i):
                self.i += 2
                self.skip_space(newlines=True)
                piped = False
                continue
            return

    def element(self, *, piped_input: bool, upstream: PsCommand | None) -> bool:
        """One pipeline element; whether it was a command (whose output the next element receives)."""
        char = self.peek()
        if char in "$[":
            target = self.assignment_target()
            if target is not None:
                key, simple = target
                if key.startswith(("alias:", "function:")):
                    raise HiddenCode(f"assigning `${key}` redefines what a command name means")
                value = self.assigned_value()
                # a conditional or repeated assignment (inside a block) leaves the value unknown after it
                known = simple and self.nesting == 0
                self.variables[key] = value if known else None
                return False
        if (
            char in "$@(['0123456789!" + SINGLE_QUOTES + DOUBLE_QUOTES
            or (char == "." and self.peek(1).isdigit())
            or (char in DASHES and (self.peek(1).isdigit() or self._unary_operator()))
        ):
            self.expression()
            return False
        self.command(piped_input=piped_input, upstream=upstream)
        return True

    def _unary_operator(self) -> bool:
        match = re.match(r"[a-z]+", self.s[self.i + 1 : self.i + 8].lower())
        return match is not None and match[0] in ("not", "bnot", "join", "split")

    def assignment_target(self) -> tuple[str, bool] | None:
        """`$name =` (and `[type]$name =`, `$env:X +=`): the variable's key, with the cursor after the operator."""
        mark = self.i
        try:
            while self.peek() == "[":
                self.type_literal()
                self.skip_space()
            if self.peek() != "$":
                self.i = mark
                return None
            key = self.variable_key()
            self.skip_space()
            match = _ASSIGNMENT.match(self.s, self.i)
            if key is None or match is None:
                self.i = mark
                return None
            self.i = match.end()
            return key, match[0] == "="
        except PowerShellError:
            self.i = mark
            return None

    def assigned_value(self) -> str | None:
        """Read the right-hand side (a pipeline); its value when it is one static string, else None."""
        self.skip_space(newlines=True)
        start = self.i
        commands_before = len(self.state.commands)
        char = self.peek()
        if char in "$" + SINGLE_QUOTES + DOUBLE_QUOTES:
            word = self.argument()
            self.skip_space()
            if self.at_end(_STATEMENT_END + ")}"):
                return word.text  # one value: `$d = "~"`, `$d = $HOME`, `$d = $(...)` (None: dynamic)
            del self.state.commands[commands_before:]  # more than one value: read it again as a pipeline
        self.i = start
        self.pipeline()
        return None

    def command(self, *, piped_input: bool, upstream: PsCommand | None) -> None:
        call = ""
        if self.peek() == "&" and self.peek(1) != "&":
            call = "&"
        elif self.peek() == "." and self.peek(1) in " \t":
            call = "."
        if call:
            self.i += 1
            self.skip_space()
        name = self.argument()
        if name.block:  # `& { ... }`, `. { ... }`: the block's commands are collected; its arguments are values
            self.words()
            return
        if name.text is None and (base := _static_basename(name.source)) is not None:
            name = Word(f"{_DYNAMIC_DIRECTORY}/{base}", name.source)  # `& "$env:ProgramFiles\nodejs\node.exe"`
        if name.text is None:
            raise HiddenCode(f"the program `{name.source}` is only known when the line runs")
        if not name.text:
            raise PowerShellError(f"an empty command name at character {self.i + 1}")
        words, writes, unknown_writes = self.words_and_redirects()
        self.state.build(
            self,
            name.text,
            words,
            writes,
            piped_input=piped_input,
            upstream=upstream,
            call=call,
            unknown_writes=unknown_writes,
        )

    def words(self) -> list[Word]:
        return self.words_and_redirects()[0]

    def words_and_redirects(self) -> tuple[list[Word], list[str], bool]:
        words: list[Word] = []
        writes: list[str] = []
        unknown_writes = False
        while True:
            self.skip_space()
            if self.at_end(_STATEMENT_END + "|)}") or self.s.startswith(("&&", "||"), self.i):
                break
            if self.peek() == "&":  # background operator: ends the command
                break
            redirect = _REDIRECT.match(self.s, self.i)
            if redirect is not None:
                self.i = redirect.end()
                if "&" not in redirect[0]:
                    self.skip_space()
                    target = self.argument()
                    if target.text is None:
                        unknown_writes = True
                    elif target.text.lower() not in ("$null", "nul", "/dev/null"):
                        writes.append(target.text)
                continue
            if self.peek() == "<":
                raise PowerShellError("`<` is reserved in PowerShell")
            if self.s.startswith("--%", self.i):
                rest = _STOP_PARSING.match(self.s, self.i)
                assert rest is not None
                self.i = rest.end()
                words.extend(Word(part, part) for part in rest[1].split())
                continue
            words.extend(self.argument_list())
        return words, writes, unknown_writes

    def argument_list(self) -> list[Word]:
        """One argument, or several joined by commas (`rm ~, /`)."""
        words = [self.argument()]
        while True:
            mark = self.i
            self.skip_space()
            if self.peek() != ",":
                self.i = mark
                return words
            self.i += 1
            self.skip_space(newlines=True)
            word = self.argument()
            words.append(Word(word.text, word.source, block=word.block, continued=True))

    # ---- words ---------------------------------------------------------------------------------------------------

    def argument(self) -> Word:
        start = self.i
        char = self.peek()
        if char in DASHES and (self.peek(1).isalpha() or self.peek(1) in "_?"):
            name = _PARAMETER.match(self.s, self.i + 1)
            assert name is not None
            self.i = name.end()
            parameter = name[0].lower()
            if self.peek() == ":":
                self.i += 1
                value = self.argument()
                return Word(None, self.s[start : self.i], parameter=parameter, attached=value)
            return Word(self.s[start : self.i], self.s[start : self.i], parameter=parameter)
        if char == "{":
            self.i += 1
            self.statements("}")
            return Word(None, self.s[start : self.i], block=True)
        if char == "(":
            self.i += 1
            before = len(self.state.commands)
            self.statements(")")
            joined = _joined_path(self.state.commands[before:])
            if self.postfix():
                joined = None
            return Word(joined, self.s[start : self.i])
        if char == "@" and self.peek(1) == "{":
            self.hashtable()
            return Word(None, self.s[start : self.i])
        if char == "@" and self.peek(1) == "(":
            self.i += 2
            self.statements(")")
            self.postfix()
            return Word(None, self.s[start : self.i])
        if char == "@" and self.peek(1) in SINGLE_QUOTES + DOUBLE_QUOTES:
            text = self.here_string()
            return Word(text, self.s[start : self.i])
        if char == "@" and _name_char(self.peek(1)):  # splatting: the arguments are in a variable
            self.i += 1
            self.variable_key(sigil=False)
            return Word(None, self.s[start : self.i])
        return self.bareword()

    def bareword(self) -> Word:
        """A word in argument mode: literal text with quoted parts, `$variables`, `$(...)` and backtick escapes."""
        start = self.i
        parts: list[str] = []
        static = True
        while self.i < len(self.s):
            char = self.s[self.i]
            if char in _WORD_END:
                break
            if char == "`":
                following = self.peek(1)
                if following in ("\n", "\r", _EOF):
                    break
                parts.append(_BACKTICK.get(following, following))
                self.i += 2
            elif char in SINGLE_QUOTES:
                parts.append(self.single_quoted())
            elif char in DOUBLE_QUOTES:
                value = self.double_quoted()
                static = static and value is not None
                parts.append(value or "")
            elif char == "$":
                value = self.dollar()
                if self.postfix():  # `$x.Name`, `$x.Method()`, `$x[0]` are evaluated in argument mode too
                    value = None
                static = static and value is not None
                parts.append(value or "")
            else:
                parts.append(char)
                self.i += 1
        if self.i == start:
            raise PowerShellError(f"unexpected {self.peek()!r} at character {self.i + 1}")
        return Word("".join(parts) if static else None, self.s[start : self.i])

    def postfix(self) -> bool:
        """Member access, calls and indexing right after a value; whether there were any."""
        found = False
        while True:
            if self.peek() == "." and (self.peek(1).isalpha() or self.peek(1) in "_$(\"'"):
                self.member(static_type=None)
            elif self.peek() == ":" and self.peek(1) == ":":
                self.i += 2
                self.member(static_type=None, static=True)
            elif self.peek() == "[":
                self.i += 1
                self.statements("]")
            else:
                return found
            found = True

    def single_quoted(self) -> str:
        self.i += 1
        parts: list[str] = []
        while True:
            if self.i >= len(self.s):
                raise PowerShellError("a single-quoted string is not closed")
            char = self.s[self.i]
            if char in SINGLE_QUOTES:
                if self.peek(1) in SINGLE_QUOTES:  # '' is one quote
                    parts.append("'")
                    self.i += 2
                    continue
                self.i += 1
                return "".join(parts)
            parts.append(char)
            self.i += 1

    def double_quoted(self) -> str | None:
        self.i += 1
        parts: list[str] = []
        static = True
        while True:
            if self.i >= len(self.s):
                raise PowerShellError("a double-quoted string is not closed")
            char = self.s[self.i]
            if char in DOUBLE_QUOTES:
                if self.peek(1) in DOUBLE_QUOTES:
                    parts.append('"')
                    self.i += 2
                    continue
                self.i += 1
                return "".join(parts) if static else None
            if char == "`":
                following = self.peek(1)
                if following == _EOF:
                    raise PowerShellError("a double-quoted string is not closed")
                parts.append(_BACKTICK.get(following, following))
                self.i += 2
            elif char == "$" and (_name_char(self.peek(1)) or self.peek(1) in "{($^?"):
                value = self.dollar()
                static = static and value is not None
                parts.append(value or "")
            else:
                parts.append(char)
                self.i += 1

    def here_string(self) -> str | None:
        quote = self.peek(1)
        expandable = quote in DOUBLE_QUOTES
        header = _HERE_STRING.match(self.s, self.i)
        if header is None:
            raise PowerShellError("a here-string must start a new line after `@\"` or `@'`")
        body_start = header.end()
        closing = re.compile(r"\r?\n[" + (DOUBLE_QUOTES if expandable else SINGLE_QUOTES) + "]@")
        match = closing.search(self.s, body_start)
        if match is None:
            raise PowerShellError("a here-string is not closed")
        body = self.s[body_start : match.start()]
        if not expandable:
            self.i = match.end()
            return body
        inner = Reader(body, state=self.state, depth=self.depth + 1, via=self.via, variables=self.variables)
        doubled = "".join(char * 2 if char in DOUBLE_QUOTES else char for char in body)
        inner.s = '"' + doubled + '"'
        value = inner.double_quoted()
        self.i = match.end()
        return value

    def dollar(self) -> str | None:
        """`$name`, `${name}`, `$env:NAME`, `$(...)`: the value when it is known here, else None."""
        if self.peek(1) == "(":
            self.i += 2
            self.statements(")")
            return None
        key = self.variable_key()
        if key is None:
            return "$"
        return self.variable_value(key)

    def variable_key(self, *, sigil: bool = True) -> str | None:
        """Consume a variable reference; its key: lower case, scope prefix dropped (`env:` kept)."""
        if sigil:
            self.i += 1
        if self.peek() == "{":
            end = self.s.find("}", self.i)
            if end < 0:
                raise PowerShellError("a `${` variable is not closed")
            name = self.s[self.i + 1 : end]
            self.i = end + 1
            if _DRIVE_PATH.match(name):  # `${C:\Users\u\.ssh\id_rsa}` is that file's content
                self.state.commands.append(
                    PsCommand(program="get-content", text=f"${{{name}}}", paths=(name,), access="use", via=self.via)
                )
        else:
            match = _VARIABLE_NAME.match(self.s, self.i)
            if match is None:
                return None
            name = match[0]
            self.i = match.end()
        name = name.lower()
        for scope in ("global:", "script:", "local:", "private:", "using:"):
            if name.startswith(scope):
                name = name[len(scope) :]
        if name == "psdefaultparametervalues":
            raise HiddenCode("$PSDefaultParameterValues changes the parameters of the commands that follow")
        return name

    def variable_value(self, key: str) -> str | None:
        if key in ("home", "env:home", "env:userprofile"):
            return "~"
        if key == "pwd":
            return "."
        if key in ("true", "false", "null"):
            return {"true": "True", "false": "False", "null": ""}[key]
        if not self.variables_known:
            return None
        return self.variables.get(key)

    def variable_word(self) -> str:
        if self.peek() != "$":
            raise PowerShellError(f"expected a variable at character {self.i + 1}")
        key = self.variable_key()
        if key is None:
            raise PowerShellError(f"expected a variable name at character {self.i + 1}")
        return key

    def hashtable(self) -> None:
        self.i += 2
        while True:
            self.skip_space(newlines=True)
            if self.peek() == ";":
                self.i += 1
                continue
            if self.peek() == "}":
                self.i += 1
                return
            if self.i >= len(self.s):
                raise PowerShellError("`@{` is not closed")
            key = self.argument() if self.peek() in "(" + SINGLE_QUOTES + DOUBLE_QUOTES else self._hash_key()
            del key
            self.skip_space()
            if self.peek() != "=":
                raise PowerShellError(f"expected `=` in a hashtable at character {self.i + 1}")
            self.i += 1
            self.skip_space(newlines=True)
            self.pipeline()

    def _hash_key(self) -> str:
        match = _HASH_KEY.match(self.s, self.i)
        if match is None:
            raise PowerShellError(f"unexpected {self.peek()!r} in a hashtable at character {self.i + 1}")
        self.i = match.end()
        return match[0]

    def type_literal(self) -> str:
        """`[Type.Name]` (balanced, `[int[]]`, `[Parameter(Mandatory)]`); its name in lower case without `system.`."""
        start = self.i
        depth = 0
        while self.i < len(self.s):
            char = self.s[self.i]
            if char == "[":
                depth += 1
            elif char == "]":
                depth -= 1
                if depth == 0:
                    self.i += 1
                    name = self.s[start + 1 : self.i - 1].strip().lower()
                    if "(" in name:  # an attribute: its arguments are expressions
                        inner = Reader(name[name.index("(") :], state=self.state, depth=self.depth + 1, via=self.via)
                        inner.expression()
                    return name.removeprefix("system.")
            elif char in SINGLE_QUOTES + DOUBLE_QUOTES + "$":
                raise PowerShellError("a type name with strings or variables is not analysed")
            self.i += 1
        raise PowerShellError("a `[` type is not closed")

    # ---- expressions -----------------------------------------------------------------------------------------------

    def expression(self) -> None:
        """Expression mode: values, operators, member access and calls, up to the end of the pipeline element."""
        after_value = False  # whether the previous token was a value (so `.x`, `::x`, `[i]` apply to it)
        static_type: str | None = None  # the type literal just read, for `[Type]::Method()`
        while True:
            self.skip_space()
            if self.at_end(_STATEMENT_END + "|)}]&") or self.s.startswith("||", self.i):
                return  # `&` ends it too: `&&`, or a background job
            char = self.peek()
            if char == ">" or (char in "123456*" and self.peek(1) == ">"):
                self._expression_redirect()
                after_value = False
            elif after_value and self._postfix_step(static_type):
                static_type = None
            else:
                static_type, after_value = self._expression_token(char)

    def _postfix_step(self, static_type: str | None) -> bool:
        """One `.Member`, `::Member` or `[index]` after a value; False if none is at the cursor."""
        if self.peek() == "." and self.peek(1) != ".":
            self.member(static_type=None)
        elif self.peek() == ":" and self.peek(1) == ":":
            self.i += 2
            self.member(static_type=static_type, static=True)
        elif self.peek() == "[":
            self.i += 1
            self.statements("]")
        else:
            return False
        return True

    def _expression_token(self, char: str) -> tuple[str | None, bool]:
        """Read one value or operator; (the type name if it was a type literal, whether it was a value)."""
        if char == "[":
            return self.type_literal(), True
        if char == "$":
            if self.peek(1) == "(":
                self.dollar()
            else:
                self.variable_key()
            return None, True
        if char in SINGLE_QUOTES:  # a string token ends at its quote (in argument mode it would run on: `'a']`)
            self.single_quoted()
            return None, True
        if char in DOUBLE_QUOTES:
            self.double_quoted()
            return None, True
        if char in "({@":
            self.argument()
            return None, True
        if char.isdigit() or (char == "." and self.peek(1).isdigit()):
            number = _NUMBER.match(self.s, self.i)
            assert number is not None
            self.i = number.end()
            return None, True
        if char in DASHES and self.peek(1).isalpha():
            operator = _LETTERS.match(self.s, self.i + 1)
            assert operator is not None
            self.i = operator.end()
            return None, False
        if char in "+-*/%=!,<.":
            if char == "=":  # an assignment to a member or element (`$v.Value = '~'`): variables may change
                self.variables_known = False
            self.i += 2 if self.s.startswith("..", self.i) else 1
            return None, False
        raise PowerShellError(f"unexpected {char!r} in an expression at character {self.i + 1}")

    def _expression_redirect(self) -> None:
        """`$x > file`: the file is written (recorded as an `out-file` command)."""
        redirect = _REDIRECT.match(self.s, self.i)
        assert redirect is not None
        self.i = redirect.end()
        if "&" in redirect[0]:
            return
        self.skip_space()
        target = self.argument()
        if target.text is None:
            raise HiddenCode("an expression writes to a file known only when the line runs")
        if target.text.lower() not in ("$null", "nul", "/dev/null"):
            self.state.commands.append(PsCommand(program="out-file", text=f"> {target.text}", writes=(target.text,)))

    def member(self, *, static_type: str | None, static: bool = False) -> None:
        """`.Name`, `.Name(...)`, `::Name(...)` after a value: a method call must be one known to only compute."""
        if not static:
            self.i += 1
        match = _MEMBER.match(self.s, self.i)
        if match is None:
            raise HiddenCode(f"a member whose name is only known when the line runs (character {self.i + 1})")
        self.i = match.end()
        name = match[0].lower()
        if self.peek() != "(":
            return  # a property
        if static and static_type is not None:
            allowed = _names.STATIC_CALLS.get(static_type, frozenset())
            if allowed is not None and name not in allowed:
                raise HiddenCode(f"the .NET call [{static_type}]::{match[0]}() is not analysed")
        elif static:
            raise HiddenCode(f"the .NET call ::{match[0]}() on a type known only at run time is not analysed")
        elif name not in _names.INSTANCE_METHODS:
            raise HiddenCode(f"the .NET method .{match[0]}() is not analysed")
        self.i += 1
        self.statements(")")


_OPENERS = {")": "(", "}": "{", "]": "["}


_DYNAMIC_DIRECTORY = "$dir"
"""Stands for a directory known only at run time in a program path whose file name is static."""
_STATIC_BASENAME = re.compile(
    r"""^["']?\$(?:\{env:[\w()]+\}|env:\w+|\w+)[\\/](?:[^$`"'()\\/]+[\\/])*([^$`"'()\\/\s]+)["']?$"""
)


def _static_basename(source: str) -> str | None:
    """The program's file name when only its directory is a variable: `"$env:ProgramFiles\\Git\\bin\\git.exe"`.

    The program is what a policy judges by name; where it lives does not change what `git` is.
    """
    match = _STATIC_BASENAME.match(source)
    return match[1] if match else None


def _joined_path(commands: list[PsCommand]) -> str | None:
    """The value of `(Join-Path $HOME .ssh id_rsa)`: the one idiom for building a path, so it is not dynamic."""
    if len(commands) != 1 or commands[0].program != "join-path" or commands[0].unknowns:
        return None
    parts = [arg for arg in commands[0].args if not arg.startswith("-")]
    return "/".join(part.rstrip("/\\") for part in parts) if parts else None


def _name_char(char: str) -> bool:
    return bool(char) and (char.isalnum() or char in "_-")
