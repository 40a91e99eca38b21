"""Programs that run other programs: `sudo rm`, `bash -c '...'`, `xargs rm`, `find -exec rm {} ;`, `echo x | sh`, ...

`unwrap` tells the analyser what a wrapper runs: another command (its argv), a string the wrapper hands to a shell
(parsed again as a shell line), or code the line does not show (`curl x | sh`, `bash <(curl x)`, `eval "$X"`), which
policies see as the unknown "script". Each wrapper's options are skipped with its real getopt grammar
(`_options.Grammar`), so `sudo -nu root rm` runs `rm`, not `root`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from keycardd.shell._awk_code import awk_effects
from keycardd.shell._editor_code import less_effects, vim_effects, vim_plus
from keycardd.shell._effects import INHERIT, NO_STDIN, Effect, Unseen, writes
from keycardd.shell._git import git_runs
from keycardd.shell._options import Grammar, Parsed, parse_options
from keycardd.shell._python_code import python_effects
from keycardd.shell._scripted_code import scripted_effects
from keycardd.shell._sed_code import sed_effects
from keycardd.shell._words import Word, ansi_c

_VERSIONED = re.compile(r"^([A-Za-z]+?)(?:-?\d+(?:\.\d+)*[a-z]?)?(?:\.exe)?$")
SHELLS = frozenset({"sh", "bash", "zsh", "dash", "ksh", "ksh93", "mksh", "pdksh", "oksh", "ash", "yash", "posh",
                    "rbash", "tcsh", "csh", "fish", "elvish", "xonsh"})  # fmt: skip
INTERPRETERS = frozenset({"python", "pypy", "perl", "ruby", "node", "nodejs", "php", "lua", "luajit", "pwsh",
                          "powershell", "osascript", "tclsh", "Rscript", "deno", "bun", "julia"})  # fmt: skip
_STDIN_FILES = frozenset({"-", "/dev/stdin", "/dev/fd/0", "/proc/self/fd/0", "/proc/thread-self/fd/0"})


@dataclass(frozen=True, slots=True)
class Stdin:
    """What a command reads on stdin when the line gives it something: static `text`, or None when unknown."""

    text: str | None
    source: str


@dataclass(frozen=True, slots=True)
class Inner:
    """The wrapper runs this argv (program first), with the wrapper's stdin."""

    label: str
    argv: tuple[Word, ...]
    assignments: tuple[str, ...] = ()
    stdin: str = INHERIT
    """For inline code's effects (`_effects.RunsArgv.stdin`): the wrapper's stdin, none, or unknown input."""


@dataclass(frozen=True, slots=True)
class Script:
    """The wrapper runs this text as a shell line (`$0`, `$1`, ... are `positional`)."""

    label: str
    text: str
    positional: tuple[Word, ...] = ()


@dataclass(frozen=True, slots=True)
class Opaque:
    """The wrapper runs code the line does not show: from a pipe, a file descriptor or a run-time string."""

    label: str
    why: str
    text: str = ""
    """The run-time text, as spelt, when there is one (`$(curl ...)` in `sh -c "$(curl ...)"`)."""


Unwrapped = Inner | Script | Opaque


def is_wrapper(program: str) -> bool:
    """Whether `program` runs a command given in its arguments (so arguments appended by xargs can name one)."""
    kind = family(program)
    return kind in SHELLS or kind in INTERPRETERS or program in _GRAMMARS or program in _RUNNERS


def family(program: str) -> str:
    """`python3.12` is a python, `bash5` a bash; other names are themselves."""
    match = _VERSIONED.match(program)
    if match is not None and (match[1] in SHELLS or match[1] in INTERPRETERS):
        return match[1]
    return program


def code(label: str, word: Word, positional: Sequence[Word] = ()) -> Unwrapped:
    """A string a wrapper runs as shell code: parsed when static, unknown otherwise."""
    if word.dynamic:
        return Opaque(label, f"{label} runs a string only known at run time", word.text)
    return Script(label, word.text, tuple(positional))


def from_stdin(label: str, stdin: Stdin | None) -> list[Unwrapped]:
    """A shell reading its script from stdin: the line's static text, or code nobody can see."""
    if stdin is None:
        return []
    if stdin.text is None:
        return [Opaque(label, f"{label} runs code read from {stdin.source}")]
    return [Script(label, stdin.text)]


def _g(short: str = "", long: str = "", optional: str = "", positionals: int = 0) -> Grammar:
    return Grammar(short, frozenset(long.split()), optional, positionals)


_GRAMMARS: dict[str, Grammar] = {
    "sudo": _g("CDghpRrTtUu", "--user --group --host --prompt --close-from --chdir --role --type --other-user "
               "--command-timeout --chroot"),
    "doas": _g("uC"),
    "run0": _g("ugD", "--user --group --nice --chdir --setenv --property --unit --description --slice --machine "
               "--background"),
    "pkexec": _g("", "--user"),
    "nohup": _g(),
    "time": _g("fo", "--format --output"),
    "builtin": _g(),
    "exec": _g("a"),
    "setsid": _g(),
    "nice": _g("n", "--adjustment"),
    "ionice": _g("cnpPu", "--class --classdata --pid --pgid --uid"),
    "stdbuf": _g("ioe", "--input --output --error"),
    "chrt": _g("TPD", "--sched-runtime --sched-period --sched-deadline", positionals=1),
    "taskset": _g("", "", positionals=1),
    "unbuffer": _g(),
    "caffeinate": _g("tw"),
    "strace": _g("abeEIoOpPsSuUX", "--output --expr --trace --signal --attach --string-limit --user --env --columns "
                 "--trace-path --status --quiet --decode-fds --const-print-style --seccomp-bpf --kvm --secontext"),
    "ltrace": _g("aAeFlnopsuxD", "--output --library --indent"),
    "timeout": _g("sk", "--signal --kill-after", positionals=1),
    "chroot": _g("", "--userspec --groups", positionals=1),
    "unshare": _g("SGRw", "--setuid --setgid --root --wd --propagation --setgroups --map-user --map-group "
                  "--map-users --map-groups --monotonic --boottime --load-interp", optional="muinpUCTr"),
    "nsenter": _g("tSG", "--target --setuid --setgid --env", optional="mutinpUCTrwa"),
    "setpriv": _g("", "--reuid --regid --groups --inh-caps --ambient-caps --bounding-set --securebits --pdeathsig "
                  "--selinux-label --apparmor-profile --landlock-access --landlock-rule --ruid --euid --rgid --egid"),
    "systemd-run": _g("upEMHCd", "--unit --property --description --slice --setenv --uid --gid --nice "
                      "--working-directory --machine --host --service-type --path-property --socket-property "
                      "--timer-property --on-active --on-boot --on-startup --on-unit-active --on-unit-inactive "
                      "--on-calendar --on-clock-change --on-timezone-change --capsule --expand-environment"),
    "systemd-inhibit": _g("", "--what --who --why --mode"),
    "firejail": _g(),
    "fakeroot": _g("", "-l --lib --faked -s -i"),
    "eatmydata": _g(),
    "nocache": _g(),
    "proxychains": _g("f"),
    "proxychains4": _g("f"),
    "torsocks": _g("uapP", "--user --pass --address --port"),
    "catchsegv": _g(),
    "dbus-run-session": _g("", "--config-file --dbus-daemon"),
    "xvfb-run": _g("nsfep", "--server-num --server-args --auth-file --error-file --xauth-protocol"),
    "cgexec": _g("g"),
    "numactl": _g("iNmCpP", "--interleave --cpunodebind --membind --physcpubind --preferred --preferred-many"),
    "prlimit": _g("p", "--pid"),
    "aa-exec": _g("pn", "--profile --namespace"),
    "valgrind": _g(),
    "sg": _g(),
    "dotenv": _g("fv", "--file"),
    "with-contenv": _g(),
    "linux32": _g(),
    "linux64": _g(),
    "i386": _g(),
    "x86_64": _g(),
    "ssh-agent": _g("aEPt"),
    "dbus-launch": _g("", "--config-file --binary-syntax --autolaunch"),
}  # fmt: skip
_SHELL_GRAMMAR = Grammar("oO", frozenset({"--rcfile", "--init-file"}), plus=True)
_NO_COMMAND_RUNS_SHELL = frozenset({"chroot", "unshare", "nsenter", "sudo", "doas", "run0", "pkexec", "sg", "su",
                                    "runuser", "script", "machinectl", "setarch", "linux32", "linux64", "i386",
                                    "x86_64"})  # fmt: skip
"""Given no command, these start an interactive shell, which reads its commands from stdin."""

# Per interpreter family: options whose value is inline code (so stdin is data), and options that take a value.
_INTERPRETER_OPTIONS: dict[str, tuple[frozenset[str], Grammar]] = {
    "python": (frozenset({"-c", "-m"}), Grammar("cmWX", frozenset({"--check-hash-based-pycs"}))),
    "perl": (frozenset({"-e", "-E"}), Grammar("eEIMm", frozenset(), short_optional="xilC0dD")),
    "ruby": (
        frozenset({"-e"}),
        Grammar("erICE", frozenset({"--encoding", "--external-encoding"}), short_optional="iKxW0F"),
    ),
    "node": (
        frozenset({"-e", "-p", "--eval", "--print"}),
        Grammar("eprC", frozenset({"--eval", "--print", "--require", "--import", "--loader", "--conditions"})),
    ),
    "php": (frozenset({"-r", "-R", "-B", "-E", "-F"}), Grammar("rRBEFfdcz", frozenset())),
    "lua": (frozenset({"-e"}), Grammar("el", frozenset())),
    "tclsh": (frozenset(), Grammar()),
    "osascript": (frozenset({"-e"}), Grammar("elsi", frozenset())),
    "julia": (frozenset({"-e", "-E", "--eval", "--print"}), Grammar("eEL", frozenset({"--eval", "--print", "--load"}))),
}


def unwrap(
    program: str, args: Sequence[Word], stdin: Stdin | None, *, home: str = ""
) -> tuple[list[Unwrapped], frozenset[str]]:
    """What `program args...` runs, if it is a wrapper, and what it leaves unknown (e.g. "targets" for `xargs rm`).
    `home` (empty when unknown) is where Python's `expanduser` and `Path.home()` point."""
    kind = family(program)
    if kind in SHELLS:
        return _shell(program, args, stdin), frozenset()
    if kind in INTERPRETERS:
        return _interpreter(program, kind, args, stdin, home), frozenset()
    handler = _HANDLERS.get(program)
    if handler is not None:
        return handler(program, args, stdin)
    grammar = _GRAMMARS.get(program)
    if grammar is not None:
        return _after_options(program, args, grammar, stdin), frozenset()
    return [], frozenset()


def _after_options(label: str, args: Sequence[Word], grammar: Grammar, stdin: Stdin | None) -> list[Unwrapped]:
    """Skip the wrapper's own options (and its positionals), return the command that follows."""
    parsed = parse_options(args, grammar)
    if parsed.dynamic:
        return [Opaque(label, f"{label} has an option only known at run time, so what it runs is unknown")]
    index = parsed.index + grammar.positionals
    rest = tuple(args[index:])
    if any(word.dynamic for word in args[parsed.index : index]):
        return [Opaque(label, f"{label} has an operand only known at run time")]
    if rest:
        return [Inner(label, rest)]
    if label in _NO_COMMAND_RUNS_SHELL:
        return from_stdin(f"{label} (shell)", stdin)
    return []


def _shell(program: str, args: Sequence[Word], stdin: Stdin | None) -> list[Unwrapped]:
    """`bash -c 'line' [$0 $1 ...]`; `bash` with no script, `bash -s`, `bash -`, `bash /dev/stdin` read stdin."""
    parsed = parse_options(args, _SHELL_GRAMMAR)
    if parsed.dynamic:
        why = f"{program} runs a string only known at run time"
        return [Opaque(program, why, args[parsed.index].text)]
    operands = args[parsed.index :]
    if parsed.has("-c"):  # `find -exec sh -c '"$0"' {} ;`: a {} operand is a file name only known at run time
        positional = [Word(w.text, dynamic=True) if "{}" in w.text else w for w in operands[1:]]
        return [code(f"{program} -c", operands[0], positional)] if operands else []
    if parsed.has("-s") or not operands:
        return from_stdin(f"{program} <stdin>", stdin)
    return _script_file(program, operands[0], stdin)


def _script_file(label: str, operand: Word, stdin: Stdin | None) -> list[Unwrapped]:
    """A shell or `source` given a file: stdin and file descriptors are code the line feeds it; files are not seen."""
    if operand.text in _STDIN_FILES:
        return from_stdin(f"{label} {operand.text}", stdin) or [Opaque(label, f"{label} runs {operand.text}")]
    if operand.dynamic or operand.text.startswith(("/dev/fd/", "/proc/self/fd/", "/proc/thread-self/fd/")):
        return [Opaque(label, f"{label} runs code from `{operand.text}`, which the line does not show")]
    return []  # a script file: its content is not in the line (a documented limitation)


def _inline_code(
    program: str, kind: str, code: Word | None, *, rest: Sequence[Word], flags: str, home: str
) -> list[Unwrapped]:
    """`python3 -c CODE`, `perl -e CODE`, ...: static Python is read (`_python_code`), static perl, ruby and node
    code is scanned (`_scripted_code`); code only known at run time (`python3 -c "$(curl -s URL)"`) is unseen."""
    if code is None:
        return []
    label = f"{program} {'-c' if kind == 'python' else '-e'}"
    if code.dynamic:
        return [Opaque(program, f"{program} runs inline code only known at run time (`{code.text}`)")]
    if kind == "python":
        return effect_items(label, python_effects(code.text, home=home))
    later = [word.text for word in rest]
    text = " ".join([code.text, *later])  # more -e CODE may follow: every word is scanned
    return effect_items(label, scripted_effects(_SCANNED[kind], text, later, loops="n" in flags or "p" in flags))


_SAME_LANGUAGE = {"pypy": "python", "nodejs": "node", "bun": "node", "deno": "node", "luajit": "lua"}
"""Interpreters that read their inline code as another family does (`pypy -c` is Python, `bun -e` JavaScript)."""
_SCANNED = {"perl": "perl", "ruby": "ruby", "node": "node", "php": "php", "lua": "lua", "Rscript": "R",
            "tclsh": "tcl", "osascript": "AppleScript", "julia": "julia"}  # fmt: skip
"""The interpreters whose inline code is scanned for primitives (`_scripted_code`), by the language it is in."""


def effect_items(label: str, effects: Sequence[Effect], *, inherits_stdin: bool = True) -> list[Unwrapped]:
    """Effects of inline code as what the analyser walks: an argv run under `label`, or unseen code.
    `inherits_stdin` is False for code read from stdin: what it starts does not get the code as its input."""
    items: list[Unwrapped] = []
    for effect in effects:
        if isinstance(effect, Unseen):
            items.append(Opaque(label, effect.why))
        else:
            stdin = NO_STDIN if effect.stdin == INHERIT and not inherits_stdin else effect.stdin
            items.append(Inner(label, effect.argv, stdin=stdin))
    return items


def _operand(args: Sequence[Word], index: int) -> Word | None:
    return args[index] if index < len(args) else None


def _interpreter(program: str, kind: str, args: Sequence[Word], stdin: Stdin | None, home: str) -> list[Unwrapped]:
    """`python3 -c CODE` and static code on stdin are read (see `_inline_code`); `curl x | python3` and
    `python3 <(curl x)` run unseen code."""
    if kind in ("pwsh", "powershell"):
        return [Opaque(program, f"{program} runs PowerShell code keycardd's shell analysis does not parse")]
    kind = _SAME_LANGUAGE.get(kind, kind)
    inline, grammar = _INTERPRETER_OPTIONS.get(kind, (frozenset({"-c", "-e"}), Grammar("ce")))
    index = 0
    flags = ""
    while index < len(args):  # the interpreter's own options end at its first operand, or at -c/-m/-e CODE
        word = args[index]
        if word.dynamic:
            return [Opaque(program, f"{program} has an option only known at run time")]
        text = word.text
        if text == "--":
            index += 1
            break
        if not text.startswith("-") or text == "-":
            break
        if text.startswith("--"):
            name, equals, value = text.partition("=")
            if name in inline:
                code = Word(value) if equals else _operand(args, index + 1)
                later = args[index + (1 if equals else 2) :]
                return _inline_code(program, kind, code, rest=later, flags=flags, home=home)
            index += 2 if name in grammar.long_value and not equals else 1
            continue
        for position, letter in enumerate(text[1:], 1):
            option, attached = "-" + letter, text[position + 1 :]
            flags += letter
            if letter in grammar.short_optional:
                break  # `perl -i.bak`, `perl -0777`: the rest of the word is its value
            if letter not in grammar.short_value:
                continue
            if option == "-m" and kind == "python":  # `python -m twine upload`: the module is the program
                module = Word(attached) if attached else (args[index + 1] if index + 1 < len(args) else None)
                rest = args[index + (1 if attached else 2) :]
                return [Inner(f"{program} -m", (module, *rest))] if module is not None else []
            if option in inline:
                code = Word(attached, word.dynamic) if attached else _operand(args, index + 1)
                later = args[index + (1 if attached else 2) :]
                return _inline_code(program, kind, code, rest=later, flags=flags, home=home)
            index += 1 if attached else 2
            break
        else:
            index += 1
            continue
        if letter in grammar.short_optional:
            index += 1
    operands = args[index:]
    if not operands or operands[0].text in _STDIN_FILES:
        if stdin is None:
            return []  # the agent's own stdin
        if stdin.text is None:
            return [Opaque(program, f"{program} runs code read from {stdin.source}")]
        if kind == "python":  # `python3 - <<'EOF'`: the static code is read; its programs do not get this stdin
            return effect_items(f"{program} <stdin>", python_effects(stdin.text, home=home), inherits_stdin=False)
        return effect_items(
            f"{program} <stdin>", scripted_effects(_SCANNED[kind], stdin.text, []), inherits_stdin=False
        )
    if operands[0].dynamic or operands[0].text.startswith(("/dev/fd/", "/proc/self/fd/")):
        return [Opaque(program, f"{program} runs code from `{operands[0].text}`, which the line does not show")]
    if program.startswith("deno") and operands[0].text == "eval":  # `deno eval CODE`: a subcommand, not a script
        return _inline_code(program, kind, _operand(operands, 1), rest=operands[2:], flags=flags, home=home)
    return []


def _source(program: str, args: Sequence[Word], stdin: Stdin | None) -> tuple[list[Unwrapped], frozenset[str]]:
    operands = [word for word in args if word.text != "--"]
    return (_script_file(program, operands[0], stdin) if operands else []), frozenset()


def _eval(program: str, args: Sequence[Word], stdin: Stdin | None) -> tuple[list[Unwrapped], frozenset[str]]:
    if not args:
        return [], frozenset()
    return [code("eval", Word(" ".join(w.text for w in args), any(w.dynamic for w in args)))], frozenset()


def _command(program: str, args: Sequence[Word], stdin: Stdin | None) -> tuple[list[Unwrapped], frozenset[str]]:
    parsed = parse_options(args, Grammar())
    if parsed.has("-v", "-V"):
        return [], frozenset()  # `command -v x` only looks x up
    return _after_options(program, args, Grammar(), stdin), frozenset()


def _su(program: str, args: Sequence[Word], stdin: Stdin | None) -> tuple[list[Unwrapped], frozenset[str]]:
    """`su [-] [user] -c CMD`, `su -s SHELL`, `runuser -u user -- cmd`: options may follow the user too."""
    grammar = _g("cgGswu", "--command --session-command --shell --group --supp-group --whitelist-environment --user")
    found: list[Unwrapped] = []
    parsed = parse_options(args, grammar)
    index = parsed.index
    options = list(parsed.options)
    dynamic = parsed.dynamic
    if program == "runuser" and parsed.has("-u", "--user"):
        rest = tuple(args[index:])
        return ([Inner(program, rest)] if rest else from_stdin(program, stdin)), frozenset()
    while index < len(args) and not dynamic:  # user name and more options, in any order
        if args[index].text.startswith("-") and args[index].text != "-":
            more = parse_options(args, grammar, index)
            options.extend(more.options)
            dynamic = more.dynamic
            index = more.index
        else:
            index += 1
    if dynamic:
        return [Opaque(program, f"{program} has an argument only known at run time")], frozenset()
    shell = next((value for name, value in options if name in ("-s", "--shell") and value is not None), None)
    command = next((value for name, value in options if name in ("-c", "--command", "--session-command")), None)
    if shell is not None:
        found.append(Inner(f"{program} -s", (shell,)))
    if command is not None:
        found.append(code(f"{program} -c", command))
    elif shell is None:
        found.extend(from_stdin(program, stdin))
    return found, frozenset()


def _flock(program: str, args: Sequence[Word], stdin: Stdin | None) -> tuple[list[Unwrapped], frozenset[str]]:
    """`flock [options] FILE -c CMD` or `flock [options] FILE CMD...`: after FILE every word is the command's,
    `--` included (flock runs a program called `--`)."""
    grammar = _g("wEc", "--timeout --conflict-exit-code --command")
    parsed = parse_options(args, grammar)
    if parsed.dynamic:
        return [Opaque(program, "flock has an option only known at run time")], frozenset()
    command = parsed.value("-c", "--command")
    if command is not None:
        return [code("flock -c", command)], frozenset()
    rest = args[parsed.index + 1 :]
    if rest and rest[0].text in ("-c", "--command"):
        return ([code("flock -c", rest[1])] if len(rest) > 1 else []), frozenset()
    return ([Inner(program, tuple(rest))] if rest else []), frozenset()


def _watch(program: str, args: Sequence[Word], stdin: Stdin | None) -> tuple[list[Unwrapped], frozenset[str]]:
    """`watch CMD...` hands the words to `sh -c`; `watch -x CMD...` runs them directly."""
    parsed = parse_options(args, _g("nq", "--interval --equexit", optional="d"))
    if parsed.dynamic:
        return [Opaque(program, "watch has an option only known at run time")], frozenset()
    rest = tuple(args[parsed.index :])
    if not rest:
        return [], frozenset()
    if parsed.has("-x", "--exec"):
        return [Inner(program, rest)], frozenset()
    return [code("watch", Word(" ".join(w.text for w in rest), any(w.dynamic for w in rest)))], frozenset()


def _xargs(program: str, args: Sequence[Word], stdin: Stdin | None) -> tuple[list[Unwrapped], frozenset[str]]:
    """xargs appends arguments read from stdin: the command's targets come from elsewhere."""
    grammar = _g("aEdILnPs", "--arg-file --delimiter --max-chars --max-args --max-procs --process-slot-var",
                 optional="eil")  # fmt: skip
    parsed = parse_options(args, grammar)
    if parsed.dynamic:
        return [Opaque(program, "xargs has an option only known at run time")], frozenset({"targets"})
    rest = tuple(args[parsed.index :])
    if not rest:
        return [Inner(program, (Word("echo"),))], frozenset({"targets"})
    replace = parsed.value("-I", "-i", "--replace")
    if parsed.has("-i", "--replace") and replace is None:
        replace = Word("{}")
    if replace is not None and replace.text and any(replace.text in word.text for word in rest[:1]):
        return [Opaque(program, "xargs takes the program's name from its input")], frozenset({"targets"})
    if replace is not None and replace.text:  # `-I%`: every word holding % is filled from the input
        rest = tuple(Word(w.text, dynamic=True) if replace.text in w.text else w for w in rest)
    inner = family(rest[0].text.rsplit("/", 1)[-1])
    shell = inner in SHELLS or inner in ("eval", "env", "sudo")
    if shell and not any(word.text.startswith("-") and "c" in word.text for word in rest[1:-1]):
        return [Opaque(program, "xargs hands its input to a shell as code")], frozenset({"targets"})
    if replace is not None and replace.text and shell and any(replace.text in word.text for word in rest[1:]):
        return [Opaque(program, "xargs puts its input into a shell's code")], frozenset({"targets"})
    return [Inner(program, rest)], frozenset({"targets"})


def _find(program: str, args: Sequence[Word], stdin: Stdin | None) -> tuple[list[Unwrapped], frozenset[str]]:
    """`find ... -exec cmd {} ;` (and -execdir, -ok, -okdir) runs `cmd` for each match."""
    found: list[Unwrapped] = []
    unknowns: set[str] = set()
    index = 0
    while index < len(args):
        text = args[index].text
        if text in ("-exec", "-execdir", "-ok", "-okdir"):
            end = index + 1
            while end < len(args) and args[end].text not in (";", "+"):
                end += 1
            inner = tuple(args[index + 1 : end])
            if inner:
                if "{}" in inner[0].text:
                    found.append(Opaque(f"find {text}", "find runs the files it finds"))
                found.append(Inner(f"find {text}", inner))
                unknowns.add("targets")
            index = end
        elif text in ("-delete", "-fprint", "-fprint0", "-fprintf", "-fls"):
            unknowns.add("targets")
        index += 1
    return found, frozenset(unknowns)


def _env(program: str, args: Sequence[Word], stdin: Stdin | None) -> tuple[list[Unwrapped], frozenset[str]]:
    """`env [-i] [-u NAME] [NAME=VALUE]... cmd`, and `env -S 'cmd args'` (the string is split into words)."""
    grammar = _g("uCSP", "--unset --chdir --split-string --block-signal --default-signal --ignore-signal")
    index = 0
    assignments: list[str] = []
    while True:
        parsed = parse_options(args, grammar, index)
        split = parsed.value("-S", "--split-string")
        if parsed.dynamic:
            return [Opaque(program, "env has an argument only known at run time")], frozenset()
        if split is not None:  # env's own escapes: `\_` is a space, `\c` ends the string
            split = Word(split.text.replace("\\_", " ").split("\\c", 1)[0].strip(), split.dynamic)
            rest = (split, *args[parsed.index :])
            # The string's words are env's own arguments (`env -S'-i cmd'`): run them as another env.
            text = Word("env " + " ".join(w.text for w in rest), any(w.dynamic for w in rest))
            return [code("env -S", text)], frozenset()
        index = parsed.index
        if index < len(args) and "=" in args[index].text and not args[index].text.startswith("="):
            assignments.append(args[index].text)
            index += 1
            continue
        if index < len(args) and args[index].text == "-":  # `env -` is `env -i`
            index += 1
            continue
        break
    rest = tuple(args[index:])
    return ([Inner("env", rest, tuple(assignments))] if rest else []), frozenset()


def _script(program: str, args: Sequence[Word], stdin: Stdin | None) -> tuple[list[Unwrapped], frozenset[str]]:
    """util-linux `script [-c CMD] [file]`: without -c it starts an interactive shell on stdin."""
    parsed = parse_options(args, _g("cEBIOTmo", "--command --echo --log-io --log-in --log-out --log-timing "
                                    "--logging-format --output-limit", optional="t"))  # fmt: skip
    if parsed.dynamic:
        return [Opaque(program, "script has an option only known at run time")], frozenset()
    command = parsed.value("-c", "--command")
    if command is None:
        later = parse_options(args, _g("c", "--command"), parsed.index + 1)
        command = later.value("-c", "--command")
    return ([code("script -c", command)] if command is not None else from_stdin("script", stdin)), frozenset()


def _busybox(program: str, args: Sequence[Word], stdin: Stdin | None) -> tuple[list[Unwrapped], frozenset[str]]:
    """`busybox rm -rf /` runs the applet `rm`; `busybox sh -c ...` a shell."""
    rest = [word for word in args if not word.text.startswith("--")] if args and args[0].text.startswith("--") else args
    return ([Inner(program, tuple(rest))] if rest else []), frozenset()


def _tracer(program: str, args: Sequence[Word], stdin: Stdin | None) -> tuple[list[Unwrapped], frozenset[str]]:
    """strace and ltrace run their command, and `-o '|CMD'` / `-o '!CMD'` pipes the trace into CMD."""
    grammar = _GRAMMARS[program]
    found = _after_options(program, args, grammar, stdin)
    parsed = parse_options(args, grammar)
    for name, value in parsed.options:
        if name in ("-o", "--output") and value is not None and value.text.startswith(("|", "!")):
            found.append(code(f"{program} -o", Word(value.text[1:], value.dynamic)))
    return found, frozenset()


def _ssh(program: str, args: Sequence[Word], stdin: Stdin | None) -> tuple[list[Unwrapped], frozenset[str]]:
    """`ssh HOST CMD...` runs CMD in the remote user's shell; `-o ProxyCommand=CMD` runs CMD here."""
    parsed = parse_options(args, _g("BbcDEeFIiJLlmOoPpQRSWw"))
    found: list[Unwrapped] = []
    for name, value in parsed.options:
        if name == "-o" and value is not None:
            key, setting = _ssh_option(value.text)
            if key.lower() in _SSH_COMMAND_OPTIONS:
                found.append(code(f"ssh -o {key}", Word(setting, value.dynamic)))
        if name == "-F":
            found.append(Opaque("ssh -F", "ssh reads a config file that can run commands"))
    if parsed.dynamic:
        return [*found, Opaque(program, "ssh has an option only known at run time")], frozenset()
    remote = args[parsed.index + 1 :]
    if remote:
        found.append(code("ssh", Word(" ".join(w.text for w in remote), any(w.dynamic for w in remote))))
    elif parsed.index < len(args):
        found.extend(from_stdin("ssh", stdin))
    return found, frozenset()


_SSH_COMMAND_OPTIONS = frozenset({"proxycommand", "localcommand", "knownhostscommand", "remotecommand"})


def _ssh_option(text: str) -> tuple[str, str]:
    """An `-o` option as ssh's config reader splits it: blanks (newlines too) skipped, `Key=Value` or `Key Value`."""
    match = re.match(r"\s*([^\s=]*)\s*=?\s*(.*)", text, re.DOTALL)
    return (match[1], match[2].strip()) if match is not None else ("", "")


def _rsync(program: str, args: Sequence[Word], stdin: Stdin | None) -> tuple[list[Unwrapped], frozenset[str]]:
    """`rsync -e CMD` / `--rsh=CMD` and `--rsync-path=CMD` run commands."""
    parsed = _scan_all(args, _g("eBfT", "--rsh --rsync-path --filter --temp-dir --block-size"))
    found = [code(f"rsync {name}", value) for name, value in parsed.options
             if name in ("-e", "--rsh", "--rsync-path") and value is not None]  # fmt: skip
    return found, frozenset()


def _scp(program: str, args: Sequence[Word], stdin: Stdin | None) -> tuple[list[Unwrapped], frozenset[str]]:
    parsed = _scan_all(args, _g("cDFiJloPSX"))
    found: list[Unwrapped] = [Inner(program, (Word("cp"),))] if program == "scp" else []  # local copies run cp
    for name, value in parsed.options:
        if name == "-S" and value is not None:
            found.append(Inner(f"{program} -S", (value,)))
        if name == "-o" and value is not None and _ssh_option(value.text)[0].lower() in _SSH_COMMAND_OPTIONS:
            found.append(code(f"{program} -o", Word(_ssh_option(value.text)[1], value.dynamic)))
    return found, frozenset()


def _scan_all(args: Sequence[Word], grammar: Grammar) -> Parsed:
    """Options anywhere among the operands (GNU argument permutation)."""
    parsed = Parsed(0)
    index = 0
    while index < len(args):
        more = parse_options(args, grammar, index)
        parsed.options.extend(more.options)
        parsed.dynamic = parsed.dynamic or more.dynamic
        index = more.index + 1 if more.index == index or more.dynamic else more.index
    return parsed


def _scan_operands(args: Sequence[Word], grammar: Grammar) -> tuple[Parsed, list[Word], bool]:
    """`_scan_all`, the operands in order (everything after `--`; a word only known at run time that does not start
    with a dash or an expansion is an operand, since it cannot be an option), and whether the first operand is in
    doubt: `-F"$SEP"` is `-F` with a run-time value, but an empty one makes `-F` take the next word instead."""
    parsed = Parsed(0)
    operands: list[Word] = []
    shifted = False
    index = 0
    while index < len(args):
        more = parse_options(args, grammar, index)
        parsed.options.extend(more.options)
        stop = more.index
        ended = (
            stop > index
            and args[stop - 1].text == "--"
            and not (more.options and more.options[-1][1] is args[stop - 1])
        )
        if ended:
            operands.extend(args[stop:])
            break
        if stop >= len(args):
            break
        word = args[stop]
        text = word.text
        if more.dynamic and len(text) > 2 and text[0] == "-" and text[1] in grammar.short_value and text[2] != "-":
            parsed.options.append((text[:2], Word(text[2:], dynamic=True)))  # `-F"$SEP"`: the option is static
            shifted = True
        elif more.dynamic and text.startswith(("-", "$", "`", '"$', '"`')):
            parsed.dynamic = True
            operands.append(word)
        else:
            operands.append(word)
        index = stop + 1
    return parsed, operands, shifted


def _at(program: str, args: Sequence[Word], stdin: Stdin | None) -> tuple[list[Unwrapped], frozenset[str]]:
    """`at TIME` and `batch` read a script from stdin (or `-f FILE`) and run it later."""
    parsed = _scan_all(args, _g("fqt"))
    if parsed.has("-l", "-r", "-d", "-c", "-V"):
        return [], frozenset()
    if parsed.has("-f"):
        return [Opaque(program, f"{program} -f runs a script file later")], frozenset()
    return (from_stdin(program, stdin) or [Opaque(program, f"{program} runs a script read from stdin")]), frozenset()


def _crontab(program: str, args: Sequence[Word], stdin: Stdin | None) -> tuple[list[Unwrapped], frozenset[str]]:
    """`crontab FILE` or `crontab -` installs jobs that cron runs later through /bin/sh: each job line's command."""
    parsed = parse_options(args, _g("usT"))
    if parsed.dynamic or parsed.has("-l", "-r", "-e", "-V"):
        return [], frozenset()  # listing, removing, or an editor (its variable is checked where it is set)
    operands = [word for word in args[parsed.index :] if word.text != "-"]
    if operands:
        return [Opaque(program, f"{program} installs jobs from {operands[0].text}, which cron runs later")], frozenset()
    if stdin is None or stdin.text is None:
        return [Opaque(program, f"{program} installs jobs read from {stdin.source if stdin else 'stdin'}")], frozenset()
    jobs: list[Unwrapped] = []
    for line in stdin.text.splitlines():
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        fields = entry.split(None, 1 if entry.startswith("@") else 5)
        command = fields[-1] if len(fields) == (2 if entry.startswith("@") else 6) else ""
        if not command or "%" in command or _CRON_VARIABLE.match(entry):  # `%` feeds stdin; `SHELL=` changes the shell
            return [Opaque(program, f"{program} installs a job line keycardd does not read: {entry[:60]}")], frozenset()
        jobs.append(Script(f"{program} job", command))
    return jobs, frozenset()


_CRON_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\s*=")


def _parallel(program: str, args: Sequence[Word], stdin: Stdin | None) -> tuple[list[Unwrapped], frozenset[str]]:
    """GNU parallel: `parallel CMD ::: args` runs CMD through a shell; with no CMD the arguments are commands."""
    grammar = _g("jSaIdNnLPCE", "--jobs --sshlogin --arg-file --delimiter --max-args --max-lines --max-procs "
                 "--colsep --eof --joblog --results --tmpdir --timeout --delay --halt --memfree --load --env "
                 "--workdir --basefile --transfer-file --return --sshloginfile --tag-string --tagstring")  # fmt: skip
    parsed = parse_options(args, grammar)
    if parsed.dynamic:
        return [Opaque(program, "parallel has an option only known at run time")], frozenset({"targets"})
    rest = list(args[parsed.index :])
    separator = next((i for i, word in enumerate(rest) if word.text in (":::", "::::", ":::+", "::::+")), len(rest))
    template, inputs = rest[:separator], rest[separator:]
    sources = [word for word in inputs[1:] if not word.text.startswith(":::")]
    static_inputs = bool(inputs) and inputs[0].text == ":::" and all(word.text != "::::" for word in inputs)
    if template:
        text = " ".join(w.text for w in template)
        dynamic = any(w.dynamic for w in template)
        if not static_inputs:
            return [code("parallel", Word(text, dynamic))], frozenset({"targets"})
        runs = []  # each input fills {} or is appended, and the result runs through a shell
        for word in sources:
            line = text.replace("{}", word.text) if "{}" in text else f"{text} {word.text}"
            runs.append(code("parallel", Word(line, dynamic or word.dynamic)))
        return runs, frozenset()
    if static_inputs:
        return [code("parallel", word) for word in sources], frozenset()
    return [Opaque(program, "parallel runs commands read from its input")], frozenset({"targets"})


def _tool_runner(program: str, args: Sequence[Word], stdin: Stdin | None) -> tuple[list[Unwrapped], frozenset[str]]:
    """`npx PKG`, `npm exec PKG`, `pnpm dlx PKG`, `uvx TOOL`, `uv run CMD`, `poetry run CMD`, ...: run a program."""
    words = list(args)
    sub = {"npm": ("exec", "x"), "pnpm": ("dlx", "exec"), "yarn": ("dlx", "exec"), "uv": ("run",),
           "poetry": ("run",), "pipenv": ("run",), "pdm": ("run",), "hatch": ("run",), "bundle": ("exec",),
           "pipx": ("run",), "conda": ("run",), "mamba": ("run",), "micromamba": ("run",), "nix": ("run", "shell"),
           "direnv": ("exec",), "rye": ("run",), "bun": ("x",), "mise": ("exec", "x"), "asdf": ("exec",)}  # fmt: skip
    label = program
    if program in sub:
        position = next((i for i, w in enumerate(words) if not w.text.startswith("-")), None)
        if program == "uv" and position is not None and words[position].text == "tool":
            position += 1 if position + 1 < len(words) and words[position + 1].text == "run" else 0
        if position is None or words[position].text not in sub[program]:
            return [], frozenset()
        label = f"{program} {words[position].text}"
        words = words[position + 1 :]
    grammar = _g("pcnwe", "--package --call --with --python --directory --project --env-file --extra --group "
                 "--index --from --name --prefix --cwd --workspace --filter")  # fmt: skip
    parsed = parse_options(words, grammar)
    call = parsed.value("-c", "--call")
    if program in ("npx", "npm", "pnpm") and call is not None:
        return [code(f"{label} -c", call)], frozenset()
    if parsed.dynamic:
        return [Opaque(label, f"{label} has an option only known at run time")], frozenset()
    rest = words[parsed.index :]
    if program == "direnv" and rest:
        rest = rest[1:]  # direnv exec DIR cmd
    if not rest:
        return [], frozenset()
    first = rest[0]
    if program in ("npx", "npm", "pnpm", "yarn", "bunx", "bun") and not first.dynamic:
        first = Word(_package_bin(first.text))
    return [Inner(label, (first, *rest[1:]))], frozenset()


def _package_bin(spec: str) -> str:
    """`npm@10` -> `npm`, `@scope/tool@1` -> `tool`: the name npx runs for a package spec."""
    name = spec[1:] if spec.startswith("@") else spec
    name = name.split("@", 1)[0]
    return name.rsplit("/", 1)[-1] or spec


_BWRAP_TWO_VALUES = ("--bind --ro-bind --dev-bind --bind-try --ro-bind-try --dev-bind-try --symlink --setenv --file "
                     "--bind-data --ro-bind-data --chmod")  # fmt: skip
_BWRAP_ONE_VALUE = ("--chdir --unsetenv --tmpfs --proc --dev --dir --uid --gid --hostname --remount-ro --seccomp "
                    "--add-seccomp-fd --info-fd --lock-file --sync-fd --block-fd --userns-block-fd --userns --userns2 "
                    "--pidns --exec-label --file-label --perms --size --cap-add --cap-drop --json-status-fd "
                    "--overlay-src --tmp-overlay --ro-overlay --argv0 --mqueue")  # fmt: skip


def _bwrap(program: str, args: Sequence[Word], stdin: Stdin | None) -> tuple[list[Unwrapped], frozenset[str]]:
    """bubblewrap: long options with one, two or three values, then the command."""
    arity = {**dict.fromkeys(_BWRAP_TWO_VALUES.split(), 2), **dict.fromkeys(_BWRAP_ONE_VALUE.split(), 1),
             "--overlay": 3, "--args": 1}  # fmt: skip
    index = 0
    while index < len(args):
        word = args[index]
        if word.dynamic:
            return [Opaque(program, "bwrap has an option only known at run time")], frozenset()
        if word.text == "--args":
            return [Opaque(program, "bwrap --args reads its arguments from a file descriptor")], frozenset()
        if word.text == "--":
            index += 1
            break
        if not word.text.startswith("--"):
            break
        index += 1 + arity.get(word.text, 0)
    rest = tuple(args[index:])
    return ([Inner(program, rest)] if rest else []), frozenset()


def _trap(program: str, args: Sequence[Word], stdin: Stdin | None) -> tuple[list[Unwrapped], frozenset[str]]:
    """`trap 'CMD' SIGNAL...` runs CMD when the signal (or EXIT, ERR, DEBUG, RETURN) arrives."""
    operands = [word for word in args if word.text != "--"]
    if not operands or operands[0].text in ("-l", "-p", "-P", "-"):
        return [], frozenset()
    if len(operands) == 1 and not operands[0].dynamic and operands[0].text.isdigit():
        return [], frozenset()  # `trap 2` resets a signal
    return [code("trap", operands[0])], frozenset()


def _alias(program: str, args: Sequence[Word], stdin: Stdin | None) -> tuple[list[Unwrapped], frozenset[str]]:
    """`alias x='CMD'`: analysed where it is defined, since any later word `x` may run it."""
    found: list[Unwrapped] = []
    for word in args:
        if word.text == "-p":
            continue
        name, equals, value = word.text.partition("=")
        if word.dynamic and (not equals or "$" in name):
            found.append(Opaque("alias", "alias defines a command only known at run time"))
        elif equals:
            found.append(code(f"alias {name}", Word(value, word.dynamic)))
    return found, frozenset()


def _mapfile(program: str, args: Sequence[Word], stdin: Stdin | None) -> tuple[list[Unwrapped], frozenset[str]]:
    """`mapfile -C CALLBACK` evaluates CALLBACK as code every `-c` lines."""
    parsed = parse_options(args, _g("dnOsuCc"))
    callback = parsed.value("-C")
    if parsed.dynamic:
        return [Opaque(program, f"{program} has an option only known at run time")], frozenset()
    return ([code(f"{program} -C", callback)] if callback is not None else []), frozenset()


def _enable(program: str, args: Sequence[Word], stdin: Stdin | None) -> tuple[list[Unwrapped], frozenset[str]]:
    """`enable -f lib.so name` loads a builtin from a shared library: code the line does not show."""
    parsed = parse_options(args, _g("f"))
    if parsed.has("-f") or parsed.dynamic:
        return [Opaque("enable -f", "enable -f loads a builtin from a shared library")], frozenset()
    return [], frozenset()


_TAR_COMPRESSORS = {"-z": "gzip", "--gzip": "gzip", "--gunzip": "gzip", "--ungzip": "gzip", "-j": "bzip2",
                    "--bzip2": "bzip2", "-J": "xz", "--xz": "xz", "-Z": "compress", "--compress": "compress",
                    "--uncompress": "compress", "--zstd": "zstd", "--lzma": "lzma", "--lzip": "lzip",
                    "--lzop": "lzop"}  # fmt: skip
_COMPRESSED_SUFFIXES = {".gz": "gzip", ".tgz": "gzip", ".taz": "gzip", ".bz2": "bzip2", ".tbz": "bzip2",
                        ".tbz2": "bzip2", ".tz2": "bzip2", ".xz": "xz", ".txz": "xz", ".zst": "zstd", ".tzst": "zstd",
                        ".lz": "lzip", ".lzma": "lzma", ".tlz": "lzma", ".lzo": "lzop", ".Z": "compress",
                        ".taZ": "compress"}  # fmt: skip


def _tar(program: str, args: Sequence[Word], stdin: Stdin | None) -> tuple[list[Unwrapped], frozenset[str]]:
    """tar runs compressors (`-z`, or by the archive's suffix) and commands: `-I`/`--use-compress-program`,
    `--to-command`, `--checkpoint-action=exec=`, `-F`/`--info-script`/`--new-volume-script`, `--rsh-command`."""
    words = list(args)
    if words and not words[0].text.startswith("-") and words[0].text.isalpha():  # old style: `tar czf x.tgz`
        words = [Word("-" + words[0].text), *words[1:]]
    parsed = _scan_all(words, _g("IFfCbHKLMNTVgX", "--use-compress-program --to-command --info-script "
                                 "--new-volume-script --rsh-command --file --directory"))  # fmt: skip
    found: list[Unwrapped] = []
    if parsed.dynamic:
        found.append(Opaque(program, "tar has an option only known at run time"))
    for name, value in parsed.options:
        if name in _TAR_COMPRESSORS:
            found.append(Inner(f"tar {name}", (Word(_TAR_COMPRESSORS[name]),)))
        elif name in ("-I", "--use-compress-program", "--to-command", "-F", "--info-script", "--new-volume-script"):
            if value is not None:
                found.append(code(f"tar {name}", value))
        elif name == "--rsh-command" and value is not None:
            found.append(Inner("tar --rsh-command", (value,)))
        elif name == "--checkpoint-action" and value is not None and value.text.startswith("exec="):
            found.append(code("tar --checkpoint-action", Word(value.text[5:], value.dynamic)))
        elif name == "--checkpoint-action" and value is not None and value.dynamic:
            found.append(Opaque(program, "tar --checkpoint-action only known at run time"))
    for word in words:
        suffix = next((s for s in _COMPRESSED_SUFFIXES if word.text.endswith(s)), None)
        if suffix is not None:
            found.append(Inner("tar (by suffix)", (Word(_COMPRESSED_SUFFIXES[suffix]),)))
    unique: dict[str, Unwrapped] = {}
    for item in found:  # one gzip for `tar czf x.tgz`, however many ways it is asked for
        key = item.argv[0].text if isinstance(item, Inner) else repr(item)
        unique.setdefault(key, item)
    return list(unique.values()), frozenset()


def _sort(program: str, args: Sequence[Word], stdin: Stdin | None) -> tuple[list[Unwrapped], frozenset[str]]:
    """`sort --compress-program=PROG` runs PROG for its temporary files."""
    parsed = _scan_all(args, _g("kotST", "--compress-program --key --output --field-separator --buffer-size "
                                "--temporary-directory --files0-from --parallel --random-source --sort"))  # fmt: skip
    found: list[Unwrapped] = [
        Inner("sort --compress-program", (value,)) for name, value in parsed.options
        if name == "--compress-program" and value is not None
    ]  # fmt: skip
    return found, frozenset()


def _zip(program: str, args: Sequence[Word], stdin: Stdin | None) -> tuple[list[Unwrapped], frozenset[str]]:
    """`zip -T -TT CMD` / `--unzip-command CMD` tests the archive with CMD."""
    found: list[Unwrapped] = []
    for index, word in enumerate(args):
        if word.text in ("-TT", "--unzip-command") and index + 1 < len(args):
            found.append(code(f"zip {word.text}", args[index + 1]))
        elif word.text.startswith(("-TT=", "--unzip-command=")):
            found.append(code("zip -TT", Word(word.text.partition("=")[2], word.dynamic)))
    return found, frozenset()


def _negation(program: str, args: Sequence[Word], stdin: Stdin | None) -> tuple[list[Unwrapped], frozenset[str]]:
    """`! ! cmd`: tree-sitter reads the second `!` as a program; bash negates twice and runs cmd."""
    return ([Inner("!", tuple(args))] if args else []), frozenset()


def _awk(program: str, args: Sequence[Word], stdin: Stdin | None) -> tuple[list[Unwrapped], frozenset[str]]:
    """awk's program (the first operand, or `-e`/`--source` texts): see `_awk_code`. `-f FILE` is a program file
    (not seen, like a script file) unless it is stdin; gawk's `-l`/`--load` loads a shared library."""
    grammar = Grammar("FvfeEilW", frozenset({"--field-separator", "--assign", "--file", "--source", "--exec",
                                             "--include", "--load"}), short_optional="dDLop")  # fmt: skip
    parsed, operands, shifted = _scan_operands(args, grammar)
    if parsed.dynamic:
        return [Opaque(program, f"{program} has an option only known at run time")], frozenset()
    texts: list[Word] = []
    for name, value in parsed.options:
        if name in ("-l", "--load"):
            return [Opaque(program, f"{program} {name} loads a compiled extension")], frozenset()
        if value is not None and name in ("-e", "--source"):
            texts.append(value)
        elif value is not None and name in ("-f", "--file", "-E", "--exec", "-i", "--include"):
            if value.dynamic or value.text in _STDIN_FILES:
                code_text = stdin.text if stdin is not None and not value.dynamic else None
                if code_text is None:
                    return [Opaque(program, f"{program} runs a program read from `{value.text}`")], frozenset()
                texts.append(Word(code_text))
            else:
                texts.append(Word(""))  # a program file: not seen (a documented limit); no operand is the program
    if not texts and operands:
        texts.extend(operands[:2] if shifted else operands[:1])
    if not texts and not _asks_about_itself(args):  # `xargs awk`: the program comes from elsewhere
        return [Opaque(program, f"{program} has no program in the line: it comes from its input")], frozenset()
    return _read_code(program, program, texts, awk_effects, "program"), frozenset()


def _sed(program: str, args: Sequence[Word], stdin: Stdin | None) -> tuple[list[Unwrapped], frozenset[str]]:
    """sed's script (the first operand, or `-e`/`--expression` texts): see `_sed_code`. `-f FILE` is a script
    file (not seen) unless it is stdin. BSD's `sed -i '' SCRIPT` is read both ways (GNU takes `''` as the script)."""
    grammar = Grammar("efl", frozenset({"--expression", "--file", "--line-length"}), short_optional="i")
    parsed, operands, shifted = _scan_operands(args, grammar)
    if parsed.dynamic:
        return [Opaque(program, f"{program} has an option only known at run time")], frozenset()
    scripts: list[Word] = []
    from_file = False
    for name, value in parsed.options:
        if value is not None and name in ("-e", "--expression"):
            scripts.append(value)
        elif value is not None and name in ("-f", "--file"):
            from_file = True
            if value.dynamic or value.text in _STDIN_FILES:
                if stdin is None or stdin.text is None or value.dynamic:
                    return [Opaque(program, f"{program} runs a script read from `{value.text}`")], frozenset()
                scripts.append(Word(stdin.text))
    if not scripts and not from_file and operands:
        scripts.append(operands[0])
        if (operands[0].text == "" or shifted) and len(operands) > 1:  # BSD's `sed -i '' SCRIPT`, `-l"$N"`
            scripts.append(operands[1])
    if not scripts and not from_file and not _asks_about_itself(args):  # `xargs sed`: from elsewhere
        return [Opaque(program, f"{program} has no script in the line: it comes from its input")], frozenset()
    return _read_code(program, f"{program} script", scripts, sed_effects, "script"), frozenset()


def _read_code(
    program: str, label: str, codes: Sequence[Word], effects: Callable[[str], list[Effect]], noun: str
) -> list[Unwrapped]:
    """awk's programs and sed's scripts: each static one read by `effects`, each one only known at run time unseen."""
    found: list[Unwrapped] = []
    for code in codes:
        if code.dynamic:
            found.append(Opaque(program, f"{program} runs a {noun} only known at run time"))
        else:
            found.extend(effect_items(label, effects(code.text)))
    return found


def _asks_about_itself(args: Sequence[Word]) -> bool:
    """`awk --version`, `sed --help`, `mawk -W version`: no program is needed."""
    return any(word.text in ("--version", "--help", "--usage", "-V", "-W", "-Wversion", "-Wv") for word in args)


def _vim(program: str, args: Sequence[Word], stdin: Stdin | None) -> tuple[list[Unwrapped], frozenset[str]]:
    """vim's `-c CMD`, `--cmd CMD`, `+CMD` and, in ex mode (`-e`, `-es`, `ex`), commands on stdin: see
    `_editor_code`."""
    commands: list[str] = []
    files: list[str] = []
    ex_mode = program == "ex"
    index = 0
    while index < len(args):
        word = args[index]
        text = word.text
        takes_value = text in ("-c", "--cmd", "-S", "-s", "-u", "-U", "-i", "-T", "-w", "-W", "-t", "-q", "-r",
                               "--servername", "--startuptime", "--remote-send", "--remote-expr")  # fmt: skip
        following = args[index + 1].text if index + 1 < len(args) else ""
        if text in ("-S", "-q", "-r") and following.startswith(("-", "+")):
            takes_value = False  # `vim -S -c CMD`: these options' file is optional
        value = args[index + 1] if takes_value and index + 1 < len(args) else None
        if word.dynamic or (value is not None and value.dynamic and text in ("-c", "--cmd", "--remote-send")):
            return [Opaque(program, f"{program} runs editor commands only known at run time")], frozenset()
        if text in ("-c", "--cmd") and value is not None:
            commands.append(value.text)
        elif text in ("--remote-send", "--remote-expr") and value is not None:
            return [Opaque(program, f"{program} {text} sends commands to another vim")], frozenset()
        elif text.startswith("+") and text != "+":
            commands.extend(vim_plus(text))
        elif text.startswith("-") and not takes_value:
            ex_mode = ex_mode or text in ("-e", "-E", "-es", "-Es", "-se", "-sE")
        elif not text.startswith("-"):
            files.append(text)
        index += 2 if takes_value else 1
    found = effect_items(program, vim_effects(commands, files))
    if ex_mode and stdin is not None:  # ex mode reads its commands from stdin
        if stdin.text is None:
            found.append(Opaque(program, f"{program} runs editor commands read from {stdin.source}"))
        else:
            found.extend(effect_items(f"{program} <stdin>", vim_effects(stdin.text.splitlines(), files)))
    return found, frozenset()


def _less(program: str, args: Sequence[Word], stdin: Stdin | None) -> tuple[list[Unwrapped], frozenset[str]]:
    """less's initial commands (`+CMD`, `++CMD`) and its log file (`-o FILE`, `--log-file=FILE`)."""
    found: list[Unwrapped] = []
    for index, word in enumerate(args):
        name, equals, value = word.text.partition("=")
        if word.text.startswith("+") and len(word.text) > 1:
            if word.dynamic:
                found.append(Opaque(program, f"{program} runs a command only known at run time"))
            else:
                found.extend(effect_items(program, less_effects(word.text)))
        elif word.text in ("-o", "-O") and index + 1 < len(args):
            found.extend(effect_items(program, [writes(args[index + 1])]))
        elif word.text.startswith(("-o", "-O")) and len(word.text) > 2 and not word.text.startswith("--"):
            found.extend(effect_items(program, [writes(Word(word.text[2:], word.dynamic))]))
        elif name in ("--log-file", "--LOG-FILE") and equals:
            found.extend(effect_items(program, [writes(Word(value, word.dynamic))]))
    return found, frozenset()


def _man(program: str, args: Sequence[Word], stdin: Stdin | None) -> tuple[list[Unwrapped], frozenset[str]]:
    """`man -P PAGER` / `--pager=PAGER` and `-H BROWSER` / `--html=BROWSER` run that command through a shell."""
    parsed = _scan_all(args, _g("PCMLmSeprRT", "--pager --config-file --manpath --locale --systems --sections "
                                "--extension --preprocessor --recode --encoding --troff-device"))  # fmt: skip
    found: list[Unwrapped] = [
        code(f"man {name}", value) for name, value in parsed.options if name in ("-P", "--pager") and value is not None
    ]  # fmt: skip
    for word in args:
        name, equals, value = word.text.partition("=")
        if (name == "--html" and equals) or (word.text.startswith("-H") and len(word.text) > 2):
            found.append(code("man --html", Word(value if equals else word.text[2:], word.dynamic)))
    return found, frozenset()


_START_STOP_VALUES = ("--exec --startas --pidfile --name --user --chuid --group --chroot --chdir --nicelevel "
                      "--procsched --iosched --umask --retry --signal --output")  # fmt: skip


def _start_stop_daemon(
    program: str, args: Sequence[Word], stdin: Stdin | None
) -> tuple[list[Unwrapped], frozenset[str]]:
    """`start-stop-daemon --start --exec PROG -- ARGS` (also -x, --startas/-a) runs PROG."""
    values = _g("xapnucgrdNPIkRsO", _START_STOP_VALUES)
    grammar = Grammar(values.short_value, values.long_value, long_flags=frozenset({"--start", "--stop", "--status"}))
    parsed = _scan_all(args, grammar)
    if parsed.dynamic:
        return [Opaque(program, "start-stop-daemon has an option only known at run time")], frozenset()
    rest = tuple(args[[w.text for w in args].index("--") + 1 :]) if any(w.text == "--" for w in args) else ()
    found: list[Unwrapped] = [
        Inner(f"{program} {name}", (value, *rest)) for name, value in parsed.options
        if name in ("-x", "--exec", "-a", "--startas") and value is not None
    ]  # fmt: skip
    return found, frozenset()


def _setarch(program: str, args: Sequence[Word], stdin: Stdin | None) -> tuple[list[Unwrapped], frozenset[str]]:
    """`setarch ARCH [options] [CMD]`: the architecture comes first, then its options; no CMD runs a shell."""
    if not args:
        return [], frozenset()
    return _after_options(program, args[1:], Grammar(), stdin), frozenset()


def _cmake(program: str, args: Sequence[Word], stdin: Stdin | None) -> tuple[list[Unwrapped], frozenset[str]]:
    """`cmake -E env [NAME=VALUE]... CMD` and `cmake -E time CMD` run CMD."""
    if len(args) < 3 or args[0].text != "-E" or args[1].text not in ("env", "time"):
        return [], frozenset()
    if args[1].text == "time":
        return [Inner("cmake -E time", tuple(args[2:]))], frozenset()
    return _env(program, args[2:], stdin)


def _split(program: str, args: Sequence[Word], stdin: Stdin | None) -> tuple[list[Unwrapped], frozenset[str]]:
    """`split --filter=CMD` pipes each piece into CMD through $SHELL."""
    parsed = _scan_all(args, _g("abClnt", "--filter --bytes --line-bytes --lines --number --suffix-length "
                                "--additional-suffix --separator --numeric-suffixes --hex-suffixes"))  # fmt: skip
    found = [
        code("split --filter", value) for name, value in parsed.options if name == "--filter" and value is not None
    ]
    return found, frozenset()


def _fc(program: str, args: Sequence[Word], stdin: Stdin | None) -> tuple[list[Unwrapped], frozenset[str]]:
    """`fc -s` / `fc -e -` run commands from the history list, which the line can fill with `history -s`."""
    if any(word.text.startswith("-") and "l" in word.text for word in args if not word.dynamic):
        return [], frozenset()  # `fc -l` only lists
    return [Opaque(program, "fc runs commands from the shell's history")], frozenset()


def _compgen(program: str, args: Sequence[Word], stdin: Stdin | None) -> tuple[list[Unwrapped], frozenset[str]]:
    """`compgen -C CMD` and `complete -C CMD` run CMD to list completions."""
    parsed = _scan_all(args, _g("AGWXPSCFo"))
    found = [code(f"{program} -C", value) for name, value in parsed.options if name == "-C" and value is not None]
    return found, frozenset()


def _jobs(program: str, args: Sequence[Word], stdin: Stdin | None) -> tuple[list[Unwrapped], frozenset[str]]:
    """`jobs -x CMD ARGS` runs CMD with job specs replaced."""
    parsed = parse_options(args, Grammar())
    if parsed.dynamic:
        return [Opaque(program, "jobs has an option only known at run time")], frozenset()
    rest = tuple(args[parsed.index :])
    return ([Inner("jobs -x", rest)] if parsed.has("-x") and rest else []), frozenset()


def _git(program: str, args: Sequence[Word], stdin: Stdin | None) -> tuple[list[Unwrapped], frozenset[str]]:
    found: list[Unwrapped] = []
    for kind, label, value in git_runs(args):
        if kind == "argv":
            found.append(Inner(label, tuple(Word(part) for part in value.text.split()) or (value,)))
        elif kind == "git":
            found.append(Inner(label, (Word("git"), *(Word(part) for part in value.text.split()))))
        elif kind == "opaque":
            found.append(Opaque(label, f"{label} runs code the line does not show"))
        else:
            found.append(code(label, value))
    return found, frozenset()


def _sg(program: str, args: Sequence[Word], stdin: Stdin | None) -> tuple[list[Unwrapped], frozenset[str]]:
    """`sg GROUP -c CMD` / `sg GROUP CMD`: CMD runs through /bin/sh."""
    rest = [word for word in args if word.text not in ("-", "-c")]
    if len(rest) < 2:
        return from_stdin(program, stdin), frozenset()
    return [code("sg", Word(" ".join(w.text for w in rest[1:]), any(w.dynamic for w in rest[1:])))], frozenset()


def _tmux(program: str, args: Sequence[Word], stdin: Stdin | None) -> tuple[list[Unwrapped], frozenset[str]]:
    """`tmux new-session 'CMD'`, `tmux run-shell CMD`, `screen -dm CMD`: a terminal multiplexer runs CMD."""
    if program == "screen":
        parsed = parse_options(args, _g("cehpSsTX"))
        rest = tuple(args[parsed.index :])
        sent = parsed.value("-X")  # `screen -X stuff TEXT` types TEXT into a window; `-X exec CMD` runs CMD
        if sent is not None and (sent.dynamic or sent.text == "stuff"):
            typed = ansi_c(" ".join(w.text for w in rest)).replace("^M", "\n").replace("^J", "\n")  # screen's escapes
            return [code("screen -X", Word(typed, any(w.dynamic for w in rest)))], frozenset()
        if sent is not None and sent.text not in ("exec", "screen"):
            return [], frozenset()
        return ([Inner(program, rest)] if rest else []), frozenset()
    found: list[Unwrapped] = []
    head = parse_options(args, _g("cfLST"))  # tmux's own options: `-c CMD` runs CMD as a shell would
    found.extend(code("tmux -c", value) for name, value in head.options if name == "-c" and value is not None)
    if head.dynamic:
        return [*found, Opaque(program, "tmux has an option only known at run time")], frozenset()
    segment: list[Word] = []
    for word in [*args[head.index :], Word(";")]:  # commands are separated by `;` (spelt `\;` in the shell)
        if word.text not in (";", "\\;"):
            segment.append(word)
            continue
        if segment and segment[0].text in _TMUX_COMMANDS:
            found.extend(_tmux_command(segment[0].text, segment[1:]))
        segment = []
    return found, frozenset()


def _tmux_command(verb: str, args: Sequence[Word]) -> list[Unwrapped]:
    """One tmux command that runs a program: one argument is a shell command, several an argv run directly."""
    label = f"tmux {verb}"
    parsed = parse_options(args, _g(_TMUX_COMMANDS[verb]))
    if parsed.dynamic:
        return [Opaque(label, "tmux has an option only known at run time")]
    operands = list(args[parsed.index :])
    if not operands:
        return []
    if verb in ("send-keys", "send"):  # keys typed into a pane's shell
        return [code(label, Word(" ".join(w.text for w in operands), any(w.dynamic for w in operands)))]
    if verb in ("run-shell", "run", "if-shell", "if", "pipe-pane", "pipep") or len(operands) == 1:
        return [code(label, operands[0])]
    return [Inner(label, tuple(operands))]


_TMUX_COMMANDS = {
    "new-session": "cefFnstxy", "new": "cefFnstxy", "new-window": "ceFnt", "neww": "ceFnt",
    "split-window": "ceFlpt", "splitw": "ceFlpt", "respawn-pane": "cet", "respawnp": "cet",
    "respawn-window": "cet", "respawnw": "cet", "run-shell": "cdt", "run": "cdt", "if-shell": "t", "if": "t",
    "send-keys": "cNt", "send": "cNt", "pipe-pane": "t", "pipep": "t", "display-popup": "bcdehsStTwxy",
    "popup": "bcdehsStTwxy",
}  # fmt: skip
"""tmux commands that run a program, with the options that take a value (every other letter is a flag: a value
option read as a flag only adds a word to what is checked, a flag read as a value option would hide the command)."""


def _terminal(program: str, args: Sequence[Word], stdin: Stdin | None) -> tuple[list[Unwrapped], frozenset[str]]:
    """A terminal emulator runs what follows `-e`, `-x`, `--execute` or `--` (an argv, or one shell command
    string), or the string of `--command`/`-e` where that takes one (gnome-terminal, xfce4-terminal)."""
    for index, word in enumerate(args):
        name, equals, value = word.text.partition("=")
        if name in ("--command", "--execute") and equals:
            return [code(f"{program} {name}", Word(value, word.dynamic))], frozenset()
        if word.text in ("-e", "-x", "--", "--execute", "--command", "--exec"):
            rest = args[index + 1 :]
            if not rest:
                return [], frozenset()
            if len(rest) == 1 or word.text == "--command":
                return [code(f"{program} {word.text}", rest[0])], frozenset()
            return [Inner(f"{program} {word.text}", tuple(rest))], frozenset()
    return [], frozenset()


def _make(program: str, args: Sequence[Word], stdin: Stdin | None) -> tuple[list[Unwrapped], frozenset[str]]:
    """make runs its makefile's recipes through a shell: a makefile from stdin, `--eval` text or a `SHELL=`
    setting is code the line gives it (a makefile in the project is a file, not seen: a documented limit)."""
    parsed = _scan_all(args, _g("CfIjlOEW", "--directory --file --makefile --include-dir --jobs --load-average "
                                     "--output-sync --eval --what-if --new-file --assume-new --old-file"))  # fmt: skip
    for name, value in parsed.options:
        if name in ("-f", "--file", "--makefile") and value is not None and (value.dynamic or value.text in
                                                                            (*_STDIN_FILES, "-")):  # fmt: skip
            return [Opaque(program, f"{program} runs recipes from a makefile read from stdin")], frozenset()
        if name in ("-E", "--eval"):
            return [Opaque(program, f"{program} --eval runs recipes given in its arguments")], frozenset()
    for word in args:
        name = word.text.partition("=")[0].strip()
        if "=" in word.text and (word.dynamic or name in ("SHELL", ".SHELLFLAGS", "MAKEFLAGS", "MAKEFILES")):
            return [Opaque(program, f"{program} {name}= changes how its recipes run")], frozenset()
    return [], frozenset()


_TERMINALS = ("xterm", "uxterm", "urxvt", "rxvt", "st", "alacritty", "konsole", "kitty", "wezterm",
              "gnome-terminal", "mate-terminal", "xfce4-terminal", "tilix", "terminator", "lxterminal",
              "qterminal", "foot", "x-terminal-emulator", "terminology", "sakura", "guake", "yakuake")  # fmt: skip


_RUNNERS = frozenset({"eval", ".", "source", "command", "su", "runuser", "flock", "watch", "xargs", "env", "script",
                      "busybox", "toybox", "ssh", "parallel", "npx", "bunx", "uvx", "pipx", "bwrap", "sg", "tmux",
                      "screen", "setarch", "start-stop-daemon", "!", "jobs", "time", "nohup", "exec", "builtin",
                      "find", *_TERMINALS})  # fmt: skip
"""Handled programs that run a command taken from their arguments."""

_HANDLERS = {
    "eval": _eval,
    ".": _source,
    "source": _source,
    "command": _command,
    "su": _su,
    "runuser": _su,
    "flock": _flock,
    "watch": _watch,
    "xargs": _xargs,
    "find": _find,
    "env": _env,
    "script": _script,
    "busybox": _busybox,
    "toybox": _busybox,
    "ssh": _ssh,
    "rsync": _rsync,
    "scp": _scp,
    "sftp": _scp,
    "at": _at,
    "batch": _at,
    "crontab": _crontab,
    "parallel": _parallel,
    "npx": _tool_runner,
    "bunx": _tool_runner,
    "uvx": _tool_runner,
    "pipx": _tool_runner,
    "npm": _tool_runner,
    "pnpm": _tool_runner,
    "yarn": _tool_runner,
    "bun": _tool_runner,
    "uv": _tool_runner,
    "poetry": _tool_runner,
    "pipenv": _tool_runner,
    "pdm": _tool_runner,
    "hatch": _tool_runner,
    "rye": _tool_runner,
    "bundle": _tool_runner,
    "conda": _tool_runner,
    "mamba": _tool_runner,
    "micromamba": _tool_runner,
    "nix": _tool_runner,
    "direnv": _tool_runner,
    "mise": _tool_runner,
    "asdf": _tool_runner,
    "bwrap": _bwrap,
    "trap": _trap,
    "alias": _alias,
    "mapfile": _mapfile,
    "readarray": _mapfile,
    "enable": _enable,
    "git": _git,
    "fc": _fc,
    "split": _split,
    "start-stop-daemon": _start_stop_daemon,
    "cmake": _cmake,
    "setarch": _setarch,
    "!": _negation,
    "tar": _tar,
    "bsdtar": _tar,
    "sort": _sort,
    "zip": _zip,
    "strace": _tracer,
    "ltrace": _tracer,
    "compgen": _compgen,
    "complete": _compgen,
    "jobs": _jobs,
    "sg": _sg,
    "tmux": _tmux,
    "make": _make,
    "gmake": _make,
    **dict.fromkeys(("awk", "gawk", "mawk", "nawk", "original-awk", "bwk", "goawk"), _awk),
    **dict.fromkeys(("sed", "gsed"), _sed),
    **dict.fromkeys(
        ("vim", "vi", "nvim", "view", "ex", "rvim", "rview", "gvim", "vimdiff", "vim.basic", "vim.tiny"), _vim
    ),
    "less": _less,
    "man": _man,
    **dict.fromkeys(_TERMINALS, _terminal),
    "screen": _tmux,
}
