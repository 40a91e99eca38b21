"""getopt's grammar, so a wrapper's own options are skipped exactly as the wrapper itself skips them.

`sudo -nu root rm` runs `rm` (`-n` is a flag, `-u` takes the next word), `strace -fo log rm` runs `rm`,
`sudo -uroot rm` runs `rm` (the value is attached), `su --comm=x` is `--command` (GNU accepts unambiguous prefixes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from keycardd.shell._words import Word


@dataclass(frozen=True, slots=True)
class Grammar:
    """A program's option grammar: which options take a value. Every other dash-word is a flag."""

    short_value: str = ""
    """Short options whose value is the rest of the cluster or else the next word (`-u root`, `-uroot`)."""
    long_value: frozenset[str] = frozenset()
    """Long options whose value is after `=` or else the next word."""
    short_optional: str = ""
    """Short options whose value, if any, is attached (`script -tfile`, `nsenter -m/proc/1/ns/mnt`)."""
    positionals: int = 0
    """Operands before the command: `timeout 5 cmd`, `chroot /srv cmd`, `flock lockfile cmd`."""
    plus: bool = False
    """Whether `+x` words are options too (shells)."""
    long_flags: frozenset[str] = frozenset()
    """Long flags that are also prefixes of a value-taking option (`--start` of `--startas`): never abbreviations."""


@dataclass(slots=True)
class Parsed:
    """Where the operands start, and the options seen on the way (names canonical, values as words)."""

    index: int
    options: list[tuple[str, Word | None]] = field(default_factory=list)
    dynamic: bool = False
    """A word whose value is only known at run time stands where an option could be: the parse is a guess."""

    def has(self, *names: str) -> bool:
        return any(name in names for name, _ in self.options)

    def value(self, *names: str) -> Word | None:
        """The last value given to any of `names` (the last one wins, as in getopt users)."""
        found = None
        for name, value in self.options:
            if name in names:
                found = value
        return found


def parse_options(args: Sequence[Word], grammar: Grammar, start: int = 0) -> Parsed:
    """Skip the options at `args[start:]` (stopping at `--`, `-` or the first operand) and report them."""
    parsed = Parsed(start)
    index = start
    while index < len(args):
        word = args[index]
        text = word.text
        if word.dynamic:
            parsed.dynamic = True
            break
        if text == "--":
            index += 1
            break
        if text.startswith("--"):
            name, equals, value = text.partition("=")
            canonical = None if name in grammar.long_flags else _long_name(name, grammar.long_value)
            if canonical is not None and not equals:
                parsed.options.append((canonical, args[index + 1] if index + 1 < len(args) else None))
                index += 2
                continue
            parsed.options.append((canonical or name, Word(value) if equals else None))
            index += 1
            continue
        if len(text) > 1 and (text[0] == "-" or (grammar.plus and text[0] == "+")):
            index = _short_cluster(args, index, grammar, parsed)
            continue
        break
    parsed.index = min(index, len(args))
    return parsed


def _short_cluster(args: Sequence[Word], index: int, grammar: Grammar, parsed: Parsed) -> int:
    """`-nu root`: flags up to the first option that takes a value, which eats the rest or the next word."""
    text = args[index].text
    sign = text[0]
    for position in range(1, len(text)):
        letter = text[position]
        rest = text[position + 1 :]
        if letter in grammar.short_value:
            if rest:
                parsed.options.append((sign + letter, Word(rest)))
                return index + 1
            parsed.options.append((sign + letter, args[index + 1] if index + 1 < len(args) else None))
            return index + 2
        if letter in grammar.short_optional:
            parsed.options.append((sign + letter, Word(rest) if rest else None))
            return index + 1
        parsed.options.append((sign + letter, None))
    return index + 1


def _long_name(name: str, known: frozenset[str]) -> str | None:
    """The value-taking long option `name` stands for: itself, or the one it is an unambiguous prefix of."""
    if name in known:
        return name
    matches = [option for option in known if option.startswith(name)] if len(name) > 3 else []
    return matches[0] if len(matches) == 1 else None
