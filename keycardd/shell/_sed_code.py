"""What a sed script does besides editing text: GNU sed's `e` runs commands, `w`/`W` write files, `r`/`R` read them.

`e COMMAND` runs COMMAND through `/bin/sh -c` (reported as that line); a bare `e` and the `s///e` flag run the
pattern space, text only known at run time (unseen code). `w FILE`, `W FILE` and the `s///w FILE` flag write FILE
(`/dev/stdout` and `/dev/stderr` excepted); `r FILE` and `R FILE` read it. The script is parsed command by command
as GNU sed reads it (addresses, `{`/`}`, `a`/`i`/`c` text, labels, `s` and `y` with any delimiter); a script
keycardd cannot read is unseen code (GNU sed with `--sandbox` refuses all three and is not special-cased).
"""

from __future__ import annotations

from keycardd.shell._effects import Effect, Unseen, reads, runs_line, writes

_TO_LINE_END = frozenset("aic:bBtTrRwWe#")
"""Commands whose argument runs to the end of the line (GNU also ends labels and `bBtT` at `;`)."""
_NO_ARGUMENT = frozenset("=dDgGhHlnNpPxzFqQLv}")
_SPECIAL_FILES = frozenset({"/dev/stdout", "/dev/stderr"})
_MAX_BRACKET = 256
"""Bracket expressions longer than this are not searched for their end (the scan stays linear): unreadable."""


class _Unreadable(Exception):
    pass


def sed_effects(script: str) -> list[Effect]:
    """What the sed script runs, writes or reads (see the module's docstring)."""
    if not any(letter in script for letter in "erRwW"):
        return []
    try:
        return list(_Parser(script).effects())
    except _Unreadable as exc:
        return [Unseen(f"keycardd cannot read this sed script ({exc})")]


class _Parser:
    def __init__(self, script: str) -> None:
        self.text = script
        self.at = 0

    def effects(self) -> list[Effect]:
        found: list[Effect] = []
        while True:
            self._skip(" \t\n;")
            if self.at >= len(self.text):
                return found
            self._address()
            self._skip(" \t")
            if self._peek() == "!":
                self.at += 1
                self._skip(" \t")
            command = self._peek()
            self.at += 1
            if command in ("", "{"):
                continue
            if command == "s":
                found.extend(self._substitute())
            elif command == "y":
                delimiter = self._take()
                self._delimited(delimiter, regex=False)
                self._delimited(delimiter, regex=False)
            elif command in _TO_LINE_END:
                argument = self._rest_of_line(command)
                found.extend(_argument_effect(command, argument))
            elif command in "qQlLv":
                self._rest_of_line(command)  # an optional exit code or line length
            elif command not in _NO_ARGUMENT:
                raise _Unreadable(f"unknown command `{command}`")

    def _peek(self) -> str:
        return self.text[self.at] if self.at < len(self.text) else ""

    def _take(self) -> str:
        char = self._peek()
        if not char or char in "\n\\":
            raise _Unreadable("a missing delimiter")
        self.at += 1
        return char

    def _skip(self, chars: str) -> None:
        while self.at < len(self.text) and self.text[self.at] in chars:
            self.at += 1

    def _address(self) -> None:
        for position in range(2):
            char = self._peek()
            if char.isdigit():
                while self._peek().isdigit() or self._peek() == "~":
                    self.at += 1
            elif char == "$":
                self.at += 1
            elif char in ("/", "\\"):
                self.at += 1
                self._delimited(self._take() if char == "\\" else "/")
                while self._peek() in ("I", "M"):
                    self.at += 1
            elif char in ("+", "~") and position:
                self.at += 1
                while self._peek().isdigit():
                    self.at += 1
            else:
                return
            self._skip(" \t")
            if self._peek() != ",":
                return
            self.at += 1
            self._skip(" \t")

    def _delimited(self, delimiter: str, *, regex: bool = True) -> str:
        """Text up to an unescaped `delimiter` (a newline inside is an error, as in GNU sed); in a regular expression
        (not in `s`'s replacement or `y`'s lists), a bracket expression may hold the delimiter."""
        start = self.at
        while self.at < len(self.text):
            char = self.text[self.at]
            if char == "\\":
                self.at += 2
                continue
            if char == delimiter:
                self.at += 1
                return self.text[start : self.at - 1]
            if char == "\n" and delimiter != "\n":
                break
            if char == "[" and delimiter != "[" and regex:  # a bracket expression may hold the delimiter
                self.at = _bracket_end(self.text, self.at)
                continue
            self.at += 1
        raise _Unreadable(f"an unterminated `{delimiter}` expression")

    def _rest_of_line(self, command: str) -> str:
        end = self.text.find("\n", self.at)
        end = len(self.text) if end == -1 else end
        if command in ":bBtTqQlLv":  # labels and numbers end at `;` too (GNU), the others only at a newline
            stops = [
                found for found in (self.text.find(";", self.at, end), self.text.find("}", self.at, end)) if found != -1
            ]
            end = min(stops, default=end) if command != ":" else min(stops[:1], default=end)
        argument = self.text[self.at : end]
        self.at = end
        if command in "aic" and argument.rstrip().endswith("\\"):  # `a\` text continued on the next lines
            while argument.endswith("\\") and self.at < len(self.text):
                next_end = self.text.find("\n", self.at + 1)
                next_end = len(self.text) if next_end == -1 else next_end
                argument = self.text[self.at + 1 : next_end]
                self.at = next_end
        return argument

    def _substitute(self) -> list[Effect]:
        delimiter = self._take()
        self._delimited(delimiter)
        self._delimited(delimiter, regex=False)
        found: list[Effect] = []
        while self.at < len(self.text):
            flag = self._peek()
            if flag in "gpiImM" or flag.isdigit():
                self.at += 1
            elif flag == "e":
                self.at += 1
                found.append(Unseen("sed's `s///e` flag runs the edited line as a command"))
            elif flag == "w":
                self.at += 1
                found.extend(_argument_effect("w", self._rest_of_line("w")))
                break
            else:
                break
        return found


def _bracket_end(text: str, start: int) -> int:
    """Where the bracket expression at `start` ends (after its `]`): a leading `^` and `]` are members, and so is
    everything in `[:class:]`, `[=x=]` and `[.x.]`. One that does not end within `_MAX_BRACKET` is unreadable."""
    at = start + 1
    at += text.startswith("^", at)
    at += text.startswith("]", at)
    limit = min(len(text), start + _MAX_BRACKET)
    while at < limit:
        if text[at] == "\n":
            break
        if text[at] == "[" and text[at + 1 : at + 2] in (":", "=", "."):
            close = text.find(text[at + 1] + "]", at + 2, limit)
            if close == -1:
                break
            at = close + 2
            continue
        if text[at] == "]":
            return at + 1
        at += 1
    raise _Unreadable("a bracket expression keycardd cannot delimit")


def _argument_effect(command: str, argument: str) -> list[Effect]:
    name = argument.strip(" \t") if command != "e" else argument.strip()
    if command == "e" and "\\" in name:
        return [Unseen("sed's `e` command has an escape keycardd does not resolve")]
    if command == "e":
        return [runs_line(name)] if name else [Unseen("sed's `e` runs the pattern space as a command")]
    if command in "wW":
        return [] if name in _SPECIAL_FILES else [writes(name)]
    if command in "rR":
        return [reads(name)] if name and name != "/dev/stdin" else []
    return []
