"""What a PowerShell command does: aliases and abbreviations resolved, the code it runs followed, its facts.

`Command` is handed each command the reader finds. It resolves the name (`rm` is `Remove-Item`, `curl.exe` is
curl), reads the parameters as PowerShell binds them (`-r` is `-Recurse` for Remove-Item), follows what runs more
code (`Invoke-Expression 'literal'`, `powershell -Command`/`-EncodedCommand`, `cmd /c`, `Start-Process`), refuses
what hides it, and records the command's paths, writes, URLs and unknowns for the policy.
"""

from __future__ import annotations

import base64
import binascii
import re

from keycardd.powershell import _names
from keycardd.powershell._reader import (
    DASHES,
    MAX_COMMANDS,
    HiddenCode,
    PowerShellError,
    PsCommand,
    Reader,
    Word,
)

_IP = re.compile(
    r"^(?:\[[0-9A-Fa-f:.]+\]|(?:0[xX][0-9A-Fa-f]+|[0-9]+)(?:\.(?:0[xX][0-9A-Fa-f]+|[0-9]+)){0,3})(?::[0-9]+)?(?:/|$)"
)
"""A word that is a numeric address (`169.254.169.254`, `0xA9FEA9FE:80/x`, `[::ffff:a9fe:a9fe]`): a host."""
_EMBEDDED_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s\"']+")
_SCRIPT_URL = re.compile(r"^(?:javascript|vbscript|about):", re.IGNORECASE)
_URL = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.\-]*://|//)")
_MODULE_QUALIFIED = re.compile(r"[A-Za-z][\w.]*\\([A-Za-z]+-[A-Za-z]+)")


class Command:
    """Turns a command name and its words into `PsCommand`s (and follows what it runs: strings, other shells)."""

    def __init__(
        self,
        reader: Reader,
        name: str,
        words: list[Word],
        writes: list[str],
        *,
        piped_input: bool,
        upstream: PsCommand | None = None,
        call: str = "",
        unknown_writes: bool = False,
    ) -> None:
        self.reader = reader
        self.upstream = upstream
        self.raw_name = name
        self.program, self.is_path = _program(name)
        self.words = words
        self.piped_input = piped_input
        self.call = call
        self.unknowns: set[str] = {"targets"} if unknown_writes else set()
        self.writes = list(writes)
        self.positional: list[str | None] = []
        self.values: dict[str, list[str | None]] = {}
        self.args: list[str] = []
        self._read_words()
        self.effects()
        self.emit()

    def _read_words(self) -> None:
        known = _names.PARAMETERS.get(self.program)
        pending: str | None = None
        last_value: list[str | None] | None = None  # where a comma's next element goes
        for word in self.words:
            if word.block:
                if pending is not None:
                    self.values.setdefault(pending, []).append(None)
                    pending = None
                self.args.append("{}")
                continue
            if word.parameter is not None and word.attached is None and pending is None:
                name = _parameter(word.parameter, known)
                # a cmdlet's parameter by its full name; a native program's option as written (`git branch -D`)
                self.args.append(f"-{name}" if known is not None else word.source)
                # a known cmdlet's value parameters take the next word; of a native program's options only the
                # download outputs are followed (`curl -o FILE`): its other words stay positional, all paths
                takes_value = name in _names.VALUE_PARAMETERS if known is not None else name in _names.DOWNLOAD_OUTPUTS
                pending = name if takes_value else None
                continue
            if word.parameter is not None and word.attached is not None:
                name = _parameter(word.parameter, known)
                self.args.append(f"-{name}")
                self.values.setdefault(name, []).append(word.attached.text)
                if word.attached.text is None:
                    self.unknowns.add("args")
                else:
                    self.args.append(word.attached.text)
                continue
            if word.text is not None and self.program in _names.DELETERS and word.text.lower() in _names.CMD_SWITCHES:
                self.args.append(_names.CMD_SWITCHES[word.text.lower()])  # `rd /s /q x`: what the agent meant
                continue
            if word.text is None:
                self.unknowns.add("args")
                if word.source.startswith("@"):  # splatting: parameters known only when the line runs
                    self.unknowns.add("flags")
                self.args.append(word.source)
            else:
                self.args.append(word.text)
            if pending is not None:
                last_value = self.values.setdefault(pending, [])
                last_value.append(word.text)
                pending = None
            elif word.continued and last_value is not None:
                last_value.append(word.text)
            else:
                self.positional.append(word.text)
                last_value = self.positional

    # ---- what the command does ------------------------------------------------------------------------------------

    def effects(self) -> None:
        program = self.program
        if program in _names.HIDDEN_CMDLETS:
            raise HiddenCode(f"`{self.raw_name}` {_names.HIDDEN_CMDLETS[program]}")
        if program in _names.VARIABLE_SETTERS or program in self.reader.state.functions or self.call == ".":
            # Set-Variable, a function of the line (`$script:d = ...` in its body), dot-sourcing: variables and
            # the location may change in ways not followed here
            self.reader.variables_known = False
            if program in self.reader.state.functions or self.call == ".":
                self.reader.state.location_known = False
        if program in ("set-location", "push-location", "pop-location"):
            self._move()
        if any((value or "").lower().startswith("variable:") for value in self._all_values()):
            self.reader.variables_known = False  # `Set-Item variable:d ~`, `Set-Content variable:d ~`
        if program in ("set-item", "new-item") and any(
            (value or "").lower().startswith(_names.PROVIDER_DEFINITIONS) for value in self._all_values()
        ):
            raise HiddenCode(f"`{self.raw_name}` defines a function or alias")
        if program == "invoke-expression":
            self._invoke_expression()
        elif program == "foreach-object":
            for value in self.positional:
                if value is not None and value.lower() not in _names.INSTANCE_METHODS:
                    raise HiddenCode(f"ForEach-Object calls the member `{value}` on each input")
        elif program == "start-process":
            self._start_process()
        elif program in _names.SHELLS:
            self._powershell()
        elif program in _names.CMD_SHELLS:
            self._cmd()
        elif program in _names.POSIX_SHELLS and (self.piped_input or program == "wsl" or self._posix_runs_code()):
            raise HiddenCode(f"`{self.raw_name}` runs a POSIX shell command, which a PowerShell line does not analyse")
        if program in _names.DOWNLOADERS:
            for option in _names.DOWNLOAD_OUTPUTS:
                for value in self.values.get(option, []):
                    if value is not None:
                        self.reader.state.downloaded.add(_same_file(value))
        targets = [self.raw_name, *(v for v in self.values.get("filepath", []) if v is not None)]
        if program in ("invoke-item", "import-module"):
            targets += [v for v in self.positional if v is not None]
        if any(_same_file(target) in self.reader.state.downloaded for target in targets):
            self.unknowns.add("script")  # runs a file this line downloads: code that is not on the line
        if any(name in _VARIABLE_OPTIONS for name in self.values) or any(
            a[1:] in _VARIABLE_OPTIONS for a in self.args if a.startswith("-")
        ):
            self.reader.variables_known = False

    def _move(self) -> None:
        """`cd`: later relative paths are relative to where it went (unknown if that is only known at run time)."""
        state = self.reader.state
        targets = [*self.positional, *self.values.get("path", []), *self.values.get("literalpath", [])]
        target = targets[0] if len(targets) == 1 else None
        if self.program == "pop-location" or target is None or self.reader.nesting > 0 or target == "-":
            state.location_known = False
        elif _is_absolute(target) or state.location is None:
            state.location = target
        else:
            state.location = _join(state.location, target)

    def _relative_to_location(self, paths: list[str]) -> list[str]:
        state = self.reader.state
        relative = [path for path in paths if not _is_absolute(path)]
        if relative and not state.location_known:
            self.unknowns.add("cwd")
        if state.location is None or self.program in ("set-location", "push-location"):
            return paths
        return [path if _is_absolute(path) else _join(state.location, path) for path in paths]

    def _recursive(self) -> bool:
        if self.program in _names.NATIVE_DELETERS:  # `rm.exe -rf`, Git for Windows' coreutils
            return any(re.fullmatch(r"-[a-zA-Z]*[rR][a-zA-Z]*|--recursive", arg) for arg in self.args)
        return "-recurse" in self.args or "flags" in self.unknowns

    def _all_values(self) -> list[str | None]:
        return [*self.positional, *(value for values in self.values.values() for value in values)]

    def _invoke_expression(self) -> None:
        if self.piped_input:
            raise HiddenCode("Invoke-Expression runs code piped into it, known only when the line runs")
        texts = self.values.get("command", []) + self.positional
        if not texts or any(text is None for text in texts):
            raise HiddenCode("Invoke-Expression runs a string known only when the line runs")
        self.nested(" ".join(text for text in texts if text is not None), "Invoke-Expression")

    def _start_process(self) -> None:
        if "filepath" in self.values:
            file_path = self.values["filepath"][0]
            arguments = self.values.get("argumentlist") or self.positional
        else:
            file_path = (self.positional[:1] or [None])[0]
            arguments = self.values.get("argumentlist") or self.positional[1:]
        if file_path is None:
            raise HiddenCode("Start-Process runs a program known only when the line runs")
        if any(argument is None for argument in arguments):
            self.unknowns.add("args")
        words = [Word(file_path, file_path)]
        for argument in arguments:
            words += [Word(part, part) for part in _split_command_line(argument or "")]
        nested = Reader(
            "", state=self.reader.state, depth=self.reader.depth + 1, via=(*self.reader.via, "Start-Process")
        )
        Command(nested, file_path, _as_parameters(words[1:]), [], piped_input=False)

    def _powershell(self) -> None:
        options: list[Word] = []
        for word in self.words:  # `-Command:x` is `-Command x`
            if word.attached is not None:
                options += [Word(f"-{word.parameter}", word.source, parameter=word.parameter), word.attached]
            else:
                options.append(word)
        index = 0
        while index < len(options):
            word = options[index]
            name = _cli_option(word)
            if name is None:
                if word.text is None:
                    raise HiddenCode("PowerShell runs a command known only when the line runs")
                rest = [w.text for w in options[index:]]
                self._powershell_command(rest)
                return
            if name == "ec" or "encodedcommand".startswith(name):
                value = options[index + 1].text if index + 1 < len(options) else None
                self.nested(_decode_encoded(value), "powershell -EncodedCommand")
                return
            if "command".startswith(name) or name == "cwa" or "commandwithargs".startswith(name):
                self._powershell_command([w.text for w in options[index + 1 :]])
                return
            if "file".startswith(name):
                target = options[index + 1].text if index + 1 < len(options) else None
                if target is None or target == "-":
                    raise HiddenCode("PowerShell runs a script read from its input or a dynamic path")
                if _same_file(target) in self.reader.state.downloaded:
                    self.unknowns.add("script")
                return
            index += 2 if name in _POWERSHELL_VALUE_OPTIONS else 1
        if self.piped_input:
            raise HiddenCode("PowerShell reads the commands it runs from its input")

    def _powershell_command(self, words: list[str | None]) -> None:
        if not words or any(word is None for word in words) or words == ["-"]:
            raise HiddenCode("PowerShell runs a command known only when the line runs (a variable or its input)")
        self.nested(" ".join(word for word in words if word is not None), "powershell -Command")

    def _cmd(self) -> None:
        for index, word in enumerate(self.words):
            if word.text is not None and word.text.lower() in ("/c", "/k", "/r"):
                rest = [w.text for w in self.words[index + 1 :]]
                if any(part is None for part in rest):
                    raise HiddenCode("cmd runs a command known only when the line runs")
                _cmd_line(self.reader, " ".join(part for part in rest if part is not None))
                return
        if self.piped_input:
            raise HiddenCode("cmd reads the commands it runs from its input")

    def _posix_runs_code(self) -> bool:
        return any(word.text is None or (word.text.startswith("-") and "c" in word.text) for word in self.words)

    def nested(self, text: str, via: str) -> None:
        reader = Reader(
            text,
            state=self.reader.state,
            depth=self.reader.depth + 1,
            via=(*self.reader.via, via),
            variables=self.reader.variables,
        )
        reader.variables_known = self.reader.variables_known
        reader.run()
        # `iex` runs in the caller's scope: what the string sets is not known after it (a new shell is harmless
        # to treat the same way)
        outer = self.reader
        for key, value in reader.variables.items():
            if outer.variables.get(key, _UNSET) != value:
                outer.variables[key] = None
        outer.variables_known = outer.variables_known and reader.variables_known

    # ---- facts ---------------------------------------------------------------------------------------------------

    def emit(self) -> None:
        program = self.program
        paths: list[str] = []
        urls: list[str] = []
        writes = list(self.writes)
        candidates: list[str | None] = [] if program in _names.NO_FILE_ARGUMENTS else list(self.positional)
        known = _names.PARAMETERS.get(program)
        for name, values in self.values.items():
            if known is None or name in _names.PATH_PARAMETERS or name == "uri":
                candidates += values
        # a downloader's first operand is a URL even without a scheme (`iwr 169.254.169.254`)
        first_operand = next(iter(self.values.get("uri", [])), None) or next(iter(self.positional), None)
        for value in candidates:
            if value is None:
                continue
            embedded = _EMBEDDED_URL.search(value)
            if _URL.match(value) or (program in _names.DOWNLOADERS and value == first_operand) or _IP.match(value):
                urls.append(value)
            elif embedded is not None:  # `/i:https://x/a.sct`, `--url=http://...`
                urls.append(embedded[0])
            elif value and not value.isdigit():
                paths.append(value)
        if program in _names.REMOTE_CODE_RUNNERS and (
            urls or any(_SCRIPT_URL.match(arg) for arg in self.args)
        ):  # mshta http://..., regsvr32 /i:http://... scrobj.dll, msiexec /i http://..., rundll32 javascript:...
            self.unknowns.add("script")
        if program in _names.WRITERS:
            writes += [path for path in paths if path not in writes]
        for option in ("destination", "outfile", *(() if known else ("o", "output", "output-document"))):
            writes += [value for value in self.values.get(option, []) if value is not None]
        if program in ("copy-item", "move-item") and "destination" not in self.values and len(self.positional) >= 2:
            last = self.positional[-1]
            if last is not None:
                writes.append(last)
        if (
            program in _names.DELETERS
            and not any(self.values.get(name) for name in ("path", "literalpath", "pspath", "lp"))
            and not self.positional
        ):
            piped = _piped_items(self.upstream) if self.piped_input else None
            if piped is None:
                self.unknowns.add("targets" if self.piped_input else "args")
            else:
                paths += piped
        paths, writes = self._relative_to_location(paths), self._relative_to_location(writes)
        access = (
            "delete" if program in _names.DELETERS or program in _names.NATIVE_DELETERS
            else "write" if program in _names.WRITERS
            else "read" if program in _names.READERS
            else "exec" if self.is_path
            else "use"
        )  # fmt: skip
        if self.is_path:
            paths.insert(0, self.raw_name)
        text = " ".join([program, *self.args])
        state = self.reader.state
        if len(state.commands) >= MAX_COMMANDS:
            raise PowerShellError(f"the command runs more than {MAX_COMMANDS} commands")
        state.commands.append(
            PsCommand(
                program=program,
                text=text,
                args=tuple(self.args),
                paths=tuple(dict.fromkeys(paths)),
                access=access,
                writes=tuple(dict.fromkeys(writes)),
                urls=tuple(dict.fromkeys(urls)),
                unknowns=tuple(sorted(self.unknowns)),
                via=self.reader.via,
                recursive=access == "delete" and self._recursive(),
            )
        )


_VARIABLE_OPTIONS = frozenset({"outvariable", "ov", "pipelinevariable", "pv", "errorvariable", "ev",
                               "warningvariable", "wv", "informationvariable", "iv"})  # fmt: skip
"""Common parameters that set a variable: after one, no variable on the line is taken as known."""


_POWERSHELL_VALUE_OPTIONS = frozenset({"executionpolicy", "ex", "ep", "windowstyle", "w", "inputformat", "if", "inp",
                                       "outputformat", "of", "o", "workingdirectory", "wd", "configurationname",
                                       "config", "settingsfile", "version", "v", "custompipename",
                                       "encodedarguments", "ea", "psconsolefile"})  # fmt: skip


def _program(name: str) -> tuple[str, bool]:
    """The canonical program name, and whether the name is a path (`./x.ps1`, `C:\\tools\\x.exe`)."""
    qualified = _MODULE_QUALIFIED.fullmatch(name)
    if qualified is not None:
        name = qualified[1]
    is_path = "/" in name or "\\" in name
    base = re.split(r"[\\/]", name)[-1].lower()
    for suffix in (".exe", ".com", ".cmd", ".bat"):
        if base.endswith(suffix):
            return base[: -len(suffix)], is_path  # `curl.exe` is curl, not the Invoke-WebRequest alias
    if is_path:
        return base, True
    return _names.ALIASES.get(base, base), False


_UNSET = object()
_LISTERS = frozenset({"get-childitem", "get-item", "resolve-path"})


def _piped_items(upstream: PsCommand | None) -> list[str] | None:
    """The paths of the items a listing pipes on (`Get-ChildItem ~ | Remove-Item`), or None if not known.

    `Get-ChildItem` without a path lists the working directory; `-Filter`/`-Include` narrow what it lists.
    """
    if upstream is None or upstream.program not in _LISTERS or "args" in upstream.unknowns:
        return None
    paths = list(upstream.paths) or ["."]
    args = [arg.lower() for arg in upstream.args]
    for option in ("-filter", "-include"):
        if option in args and args.index(option) + 1 < len(args):
            pattern = upstream.args[args.index(option) + 1]
            paths = [f"{path.rstrip('/')}/{pattern}" for path in paths]
    return paths


def _join(location: str, path: str) -> str:
    return f"{location.rstrip(chr(92) + '/')}/{path}"


def _is_absolute(path: str) -> bool:
    return path.startswith(("/", "\\", "~")) or bool(re.match(r"[A-Za-z]:|[\w.]+::", path))


def _parameter(name: str, known: tuple[str, ...] | None) -> str:
    """The parameter `-name` abbreviates: the exact one, else the only one it is a prefix of, else as written."""
    if known is None or name in known:
        return name
    matches = [candidate for candidate in known if candidate.startswith(name)]
    return matches[0] if len(matches) == 1 else name


def _cli_option(word: Word) -> str | None:
    """`-Command`, `--command`, `/command` for powershell.exe and pwsh: the lower-case name, or None if not one."""
    text = word.text if word.parameter is None else f"-{word.parameter}"
    if text is None:
        return None
    match = re.fullmatch(r"(?:--?|/|[\u2013\u2014\u2015])([A-Za-z]+)", text)
    return match[1].lower() if match else None


def _decode_encoded(value: str | None) -> str:
    if value is None:
        raise HiddenCode("PowerShell runs an encoded command known only when the line runs")
    try:
        return base64.b64decode(value, validate=True).decode("utf-16-le")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise HiddenCode("PowerShell runs an encoded command that does not decode") from None


def _same_file(path: str) -> str:
    """A loose key for "the same file" within one line: case, separators and a leading `./` ignored."""
    key = path.replace("\\", "/").lower()
    while key.startswith("./"):
        key = key[2:]
    return key


def _split_command_line(text: str) -> list[str]:
    """Windows command-line splitting, simplified: whitespace separates, double quotes group."""
    return [part.replace('"', "") for part in re.findall(r'(?:[^\s"]+|"[^"]*")+', text)]


def _as_parameters(words: list[Word]) -> list[Word]:
    return [
        Word(word.text, word.source, parameter=word.text[1:].lower())
        if word.text and word.text[:1] in DASHES and word.text[1:2].isalpha()
        else word
        for word in words
    ]


def _cmd_line(reader: Reader, text: str) -> None:
    """`cmd /c` text: commands split on `&`, `&&`, `||`, `|`; `del /s /q` read as `Remove-Item -Recurse -Force`."""
    if re.search(r"![^!]*!|\^", text) or re.search(r"(?i)(?:^|[&|(]\s*)(?:for|if|call|goto)\b", text):
        raise HiddenCode("cmd control flow, delayed expansion or escapes are not analysed")
    text = re.sub(r"(?i)%(?:userprofile|home)%|%homedrive%%homepath%", "~", text)
    if "%" in text:
        raise HiddenCode("cmd expands a variable known only when the line runs")
    nested = Reader("", state=reader.state, depth=reader.depth + 1, via=(*reader.via, "cmd /c"))
    for segment in re.split(r"&&|\|\||[&|]", _strip_quoted_operators(text)):
        parts = _split_command_line(segment.replace("\0", "&"))
        if not parts:
            continue
        name = _names.CMD_BUILTINS.get(parts[0].lower(), parts[0])
        words = [
            Word(_names.CMD_SWITCHES[part.lower()], part, parameter=_names.CMD_SWITCHES[part.lower()][1:])
            if part.lower() in _names.CMD_SWITCHES
            else Word(part, part)
            for part in parts[1:]
            if not (part.startswith("/") and len(part) == 2 and part.lower() not in _names.CMD_SWITCHES)
        ]
        Command(nested, name, words, [], piped_input=False)


def _strip_quoted_operators(text: str) -> str:
    """Protect `&` and `|` inside double quotes from the split (as NUL, restored per segment)."""
    return re.sub(r'"[^"]*"', lambda match: match[0].replace("&", "\0").replace("|", "\0"), text)
