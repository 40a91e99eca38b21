"""What an awk program does besides filtering text: commands it runs, files it writes or reads.

awk runs commands through `/bin/sh -c` in `system(CMD)`, `CMD | getline`, `print ... | CMD` and gawk's `|&`
coprocesses, and writes files with `print ... > FILE` / `>>`. A command or file that is a string literal is reported
(`system("rm -rf ~")` runs `sh -c 'rm -rf ~'`); one built at run time (`system($0)`) is unseen code. gawk's `@load`
and `@include` load code from files; `/inet/...` special files open connections.

A small lexer separates strings, regular expressions and comments from code (a `/` after an operand divides, else
it starts a regular expression), so `print "a > b"` writes nothing and `/system(/` runs nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from keycardd.shell._effects import Effect, Unseen, connects, reads, runs_line, writes

_TOKEN = re.compile(
    r'"(?:[^"\\\n]|\\.)*"|#[^\n]*|\n|\\\n|[ \t\r]+|\|&|\|\||&&|>>|>=|<=|==|!=|\+\+|--|[-+*/%^!<>=]=?'
    r"|[A-Za-z_][A-Za-z0-9_]*|\$|[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?|\.[0-9]+|[{}()\[\];,?:~|@]|.",
    re.DOTALL,
)
_OPERAND_END = re.compile(r'^(?:"|[A-Za-z_0-9.$)\]]|\+\+|--)')
"""Tokens after which `/` divides (an operand just ended); after anything else it starts a regular expression."""
_REGEX = re.compile(r"/(?:[^/\\\n\[]|\\.|\[(?:\\.|[^\]\\\n])*\])*/")
_HARMLESS_FILES = frozenset({"/dev/stdout", "/dev/stderr", "/dev/null", "-", "/dev/fd/1", "/dev/fd/2"})
_STATEMENT_END = frozenset({";", "\n", "}", None})
_KEYWORDS = frozenset({"in", "getline", "print", "printf", "if", "else", "while", "for", "do", "return", "delete",
                       "next", "nextfile", "exit", "function", "func", "BEGIN", "END", "BEGINFILE",
                       "ENDFILE"})  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Token:
    text: str
    kind: str  # "string", "regex", "word", "op"

    @property
    def literal(self) -> str | None:
        """The value of a string literal with only the escapes `\\"`, `\\\\`, `\\/`, `\\n`, `\\t`, else None (an
        octal `\\162\\155` is `rm`: such a string counts as built at run time)."""
        if self.kind != "string" or re.search(r'\\[^"\\/nt]', self.text[1:-1]):
            return None
        return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m[1], m[1]), self.text[1:-1])


def awk_effects(program: str) -> list[Effect]:
    """What the awk program text runs, writes, reads or reaches (see the module's docstring)."""
    if not re.search(r"system|getline|[|>@]", program):
        return []  # no construct that runs, writes or loads anything: the common case
    tokens = _tokens(program)
    if tokens is None:
        return [Unseen("keycardd cannot read this awk program (an unclosed string or regular expression)")]
    effects: list[Effect] = []
    in_print = False
    depth = 0
    for index, token in enumerate(tokens):
        text = token.text
        after = tokens[index + 1] if index + 1 < len(tokens) else None
        if token.kind == "word" and text in ("print", "printf"):
            in_print, depth = True, 0
        elif text in ("(", "["):
            depth += 1
        elif text in (")", "]"):
            depth -= 1
        elif text in _STATEMENT_END:
            in_print = False
        if token.kind == "word" and text == "system" and after is not None and after.text == "(":
            effects.append(_command(tokens, index + 2, "system()", closing=")"))
        elif text in ("|", "|&") and after is not None and after.text == "getline":
            effects.append(_command_before(tokens, index))
        elif text in ("|", "|&", ">", ">>") and in_print and depth <= 0:
            output = _output(text, _target(tokens, index + 1))
            if output is not None:
                effects.append(output)
        elif text == "<" and _after_getline(tokens, index):
            literal = after.literal if after is not None else None
            if literal is not None and literal not in ("-", "/dev/stdin"):
                effects.append(_input(literal))
        elif text == "@" and after is not None and after.text in ("load", "include"):
            effects.append(Unseen(f"awk's `@{after.text}` loads code from a file"))
        elif text == "@" and after is not None and after.kind == "word" and after.text != "namespace":
            effects.append(Unseen("gawk's indirect call `@name()` calls a function chosen at run time"))
    return effects


def _tokens(program: str) -> list[_Token] | None:
    tokens: list[_Token] = []
    position = 0
    previous: _Token | None = None
    while position < len(program):
        char = program[position]
        if char == "/" and (previous is None or not _divides(previous)):
            match = _REGEX.match(program, position)
            if match is None:
                return None
            tokens.append(_Token(match[0], "regex"))
            previous = tokens[-1]
            position = match.end()
            continue
        match = _TOKEN.match(program, position)
        if match is None:
            return None
        text = match[0]
        position = match.end()
        if text == '"':
            return None  # an unclosed string
        if text.startswith('"'):
            token = _Token(text, "string")
        elif text.startswith("#") or text.strip(" \t\r") == "" or text == "\\\n":
            continue
        elif text[0].isalpha() or text[0] == "_":
            token = _Token(text, "word")
        else:
            token = _Token(text, "op")
        tokens.append(token)
        previous = token
    return tokens


def _divides(previous: _Token) -> bool:
    if previous.kind == "word":
        return previous.text not in _KEYWORDS or previous.text == "getline"
    return previous.kind in ("string", "regex") or bool(_OPERAND_END.match(previous.text))


def _command(tokens: list[_Token], start: int, what: str, *, closing: str) -> Effect:
    """`system("CMD")`: a single string literal followed by the closing parenthesis; anything else is unseen."""
    if start + 1 < len(tokens) and tokens[start].literal is not None and tokens[start + 1].text == closing:
        return runs_line(tokens[start].literal or "")
    return Unseen(f"awk's {what} runs a command built at run time")


def _command_before(tokens: list[_Token], index: int) -> Effect:
    """`"CMD" | getline`: a string literal right after a statement boundary or `(`; anything else is unseen."""
    before = tokens[index - 1] if index else None
    boundary = tokens[index - 2].text if index >= 2 else None
    if before is not None and before.literal is not None and (boundary in _STATEMENT_END or boundary in ("(", "{")):
        return runs_line(before.literal)
    return Unseen("awk's `| getline` runs a command built at run time")


def _target(tokens: list[_Token], start: int) -> str | None:
    """The output target after `>`, `>>` or `|` in a print statement, when it is one string literal."""
    if start >= len(tokens) or tokens[start].literal is None:
        return None
    after = tokens[start + 1].text if start + 1 < len(tokens) else None
    return tokens[start].literal if after in _STATEMENT_END else None


def _after_getline(tokens: list[_Token], index: int) -> bool:
    """`getline < FILE` or `getline VAR < FILE`."""
    if index and tokens[index - 1].text == "getline":
        return True
    return index >= 2 and tokens[index - 2].text == "getline" and tokens[index - 1].kind == "word"


def _output(operator: str, target: str | None) -> Effect | None:
    if target is None:
        kind = "command" if operator.startswith("|") else "file"
        return Unseen(f"awk prints to a {kind} named at run time")
    if target.startswith("/inet"):  # gawk's /inet/tcp/LPORT/HOST/RPORT
        parts = target.split("/")
        host = parts[4] if len(parts) > 4 else ""
        return connects(f"tcp://{host}:{parts[5] if len(parts) > 5 else 0}")
    if operator.startswith("|"):
        return runs_line(target, stdin="awk's print output")  # `print "rm -rf ~" | "sh"`: sh runs what awk prints
    return None if target in _HARMLESS_FILES else writes(target)


def _input(path: str) -> Effect:
    if path.startswith("/inet"):
        parts = path.split("/")
        return connects(f"tcp://{parts[4] if len(parts) > 4 else ''}:{parts[5] if len(parts) > 5 else 0}")
    return reads(path)
