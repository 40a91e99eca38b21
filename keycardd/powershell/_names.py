"""What PowerShell's names mean: built-in aliases, cmdlet parameters, and the .NET calls known to be harmless.

Tables, not code: each is the documented built-in set (Windows PowerShell 5.1 and PowerShell 7), lower case,
because PowerShell resolves names without regard to case.
"""

from __future__ import annotations

ALIASES = {
    "%": "foreach-object", "?": "where-object", "ac": "add-content", "cat": "get-content", "cd": "set-location",
    "chdir": "set-location", "clc": "clear-content", "clear": "clear-host", "cls": "clear-host", "copy": "copy-item",
    "cp": "copy-item", "cpi": "copy-item", "cpp": "copy-itemproperty", "cvpa": "convert-path", "del": "remove-item",
    "diff": "compare-object", "compare": "compare-object", "dir": "get-childitem", "echo": "write-output",
    "epal": "export-alias", "erase": "remove-item", "etsn": "enter-pssession", "exsn": "exit-pssession",
    "fc": "format-custom", "fl": "format-list", "foreach": "foreach-object", "ft": "format-table",
    "fw": "format-wide", "gal": "get-alias", "gc": "get-content", "gcb": "get-clipboard", "gci": "get-childitem",
    "gcm": "get-command", "gdr": "get-psdrive", "ghy": "get-history", "gi": "get-item", "gl": "get-location",
    "gm": "get-member", "gp": "get-itemproperty", "gps": "get-process", "group": "group-object",
    "gsv": "get-service", "gu": "get-unique", "gv": "get-variable", "gwmi": "get-wmiobject", "h": "get-history",
    "history": "get-history", "icm": "invoke-command", "iex": "invoke-expression", "ihy": "invoke-history",
    "ii": "invoke-item", "ipal": "import-alias", "ipcsv": "import-csv", "ipmo": "import-module",
    "irm": "invoke-restmethod", "iwmi": "invoke-wmimethod", "iwr": "invoke-webrequest", "kill": "stop-process",
    "ls": "get-childitem", "man": "help", "md": "mkdir", "measure": "measure-object", "mi": "move-item",
    "mount": "new-psdrive", "move": "move-item", "mp": "move-itemproperty", "mv": "move-item", "nal": "new-alias",
    "ndr": "new-psdrive", "ni": "new-item", "nmo": "new-module", "nsn": "new-pssession", "nv": "new-variable",
    "ogv": "out-gridview", "oh": "out-host", "popd": "pop-location", "ps": "get-process", "pushd": "push-location",
    "pwd": "get-location", "r": "invoke-history", "rbp": "remove-psbreakpoint", "rcjb": "receive-job",
    "rd": "remove-item", "rdr": "remove-psdrive", "ren": "rename-item", "ri": "remove-item", "rjb": "remove-job",
    "rm": "remove-item", "rmdir": "remove-item", "rmo": "remove-module", "rni": "rename-item",
    "rnp": "rename-itemproperty", "rp": "remove-itemproperty", "rv": "remove-variable", "rwmi": "remove-wmiobject",
    "sajb": "start-job", "sal": "set-alias", "saps": "start-process", "sasv": "start-service",
    "sbp": "set-psbreakpoint", "sc": "set-content", "scb": "set-clipboard", "select": "select-object",
    "set": "set-variable", "si": "set-item", "sl": "set-location", "sleep": "start-sleep", "sls": "select-string",
    "sort": "sort-object", "sp": "set-itemproperty", "spjb": "stop-job", "spps": "stop-process",
    "spsv": "stop-service", "start": "start-process", "sv": "set-variable", "swmi": "set-wmiinstance",
    "tee": "tee-object", "trcm": "trace-command", "type": "get-content", "wget": "invoke-webrequest",
    "where": "where-object", "wjb": "wait-job", "write": "write-output", "curl": "invoke-webrequest",
}  # fmt: skip
"""`curl` and `wget` are aliases in Windows PowerShell 5.1 only; both download either way."""

SHELLS = frozenset({"powershell", "pwsh", "powershell_ise"})
CMD_SHELLS = frozenset({"cmd"})
POSIX_SHELLS = frozenset({"bash", "sh", "zsh", "dash", "ksh", "fish", "wsl", "busybox"})

CMD_BUILTINS = {
    "del": "remove-item", "erase": "remove-item", "rd": "remove-item", "rmdir": "remove-item",
    "type": "get-content", "more": "get-content", "copy": "copy-item", "move": "move-item", "ren": "rename-item",
    "rename": "rename-item", "md": "mkdir", "mkdir": "mkdir", "echo": "write-output", "dir": "get-childitem",
}  # fmt: skip
"""cmd.exe's built-ins, named as the cmdlets that do the same, so one rule covers `del /s /q` and `Remove-Item`."""
CMD_SWITCHES = {"/s": "-recurse", "/q": "-force", "/f": "-force"}

PARAMETERS = {
    "remove-item": ("path", "literalpath", "filter", "include", "exclude", "recurse", "force", "credential",
                    "whatif", "confirm", "stream", "pspath", "lp"),
    "get-content": ("path", "literalpath", "readcount", "totalcount", "tail", "filter", "include", "exclude",
                    "force", "credential", "delimiter", "wait", "raw", "encoding", "asbytestream", "stream",
                    "first", "head", "last", "pspath", "lp"),
    "set-content": ("path", "literalpath", "value", "passthru", "filter", "include", "exclude", "force",
                    "credential", "whatif", "confirm", "nonewline", "encoding", "asbytestream", "stream"),
    "add-content": ("path", "literalpath", "value", "passthru", "filter", "include", "exclude", "force",
                    "credential", "whatif", "confirm", "nonewline", "encoding", "asbytestream", "stream"),
    "out-file": ("filepath", "literalpath", "encoding", "append", "force", "noclobber", "width", "nonewline",
                 "inputobject", "whatif", "confirm", "path"),
    "invoke-webrequest": ("uri", "outfile", "method", "body", "headers", "usebasicparsing", "passthru",
                          "infile", "credential", "useragent", "timeoutsec", "erroraction"),
    "invoke-restmethod": ("uri", "outfile", "method", "body", "headers", "usebasicparsing", "passthru",
                          "infile", "credential", "useragent", "timeoutsec", "erroraction"),
    "start-process": ("filepath", "argumentlist", "workingdirectory", "verb", "wait", "nonewwindow",
                      "passthru", "windowstyle", "credential", "redirectstandardoutput", "redirectstandardinput",
                      "redirectstandarderror", "loaduserprofile", "usenewenvironment", "environment"),
    "invoke-expression": ("command",),
    "invoke-command": ("scriptblock", "filepath", "computername", "argumentlist", "session", "asjob",
                       "credential", "inputobject", "nonewscope"),
    "copy-item": ("path", "literalpath", "destination", "recurse", "force", "container", "filter", "include",
                  "exclude", "passthru", "credential", "whatif", "confirm", "fromsession", "tosession"),
    "move-item": ("path", "literalpath", "destination", "force", "filter", "include", "exclude", "passthru",
                  "credential", "whatif", "confirm"),
    "add-type": ("typedefinition", "memberdefinition", "name", "namespace", "path", "literalpath",
                 "assemblyname", "language", "referencedassemblies", "outputassembly", "passthru",
                 "ignorewarnings", "usingnamespace", "compileroptions", "outputtype"),
    "start-bitstransfer": ("source", "destination", "asynchronous", "displayname", "priority", "transfertype"),
}  # fmt: skip
"""Parameters of the cmdlets the default policy looks at, so an abbreviation (`-r`, `-Rec`, `-fo`) is read as
PowerShell reads it: the one parameter it is a prefix of."""

PATH_PARAMETERS = frozenset({"path", "literalpath", "pspath", "lp", "filepath", "destination", "outfile",
                             "infile", "source", "workingdirectory", "redirectstandardoutput",
                             "redirectstandardinput", "redirectstandarderror", "outputassembly"})  # fmt: skip
VALUE_PARAMETERS = frozenset({*PATH_PARAMETERS, "filter", "include", "exclude", "uri", "method", "body",
                              "headers", "argumentlist", "verb", "windowstyle", "credential", "encoding", "value",
                              "readcount", "totalcount", "tail", "first", "head", "last", "delimiter", "stream",
                              "command", "computername", "session", "typedefinition", "memberdefinition", "name",
                              "namespace", "assemblyname", "language", "useragent", "timeoutsec", "erroraction",
                              "width", "inputobject", "scriptblock", "priority", "transfertype", "displayname",
                              "referencedassemblies", "usingnamespace", "compileroptions", "outputtype",
                              "fromsession", "tosession", "environment"})  # fmt: skip
"""Parameters that take a value (the next word), as opposed to switches such as `-Recurse` and `-Force`."""

NATIVE_DELETERS = frozenset({"rm", "rmdir", "unlink", "shred"})
"""Native programs that delete (`rm.exe` from Git for Windows or MSYS; `rm` on a POSIX pwsh when called as
`rm.exe` or by path): the built-in `rm` alias is Remove-Item."""
DELETERS = frozenset({"remove-item", "clear-content", "clear-item", "remove-itemproperty"})
READERS = frozenset({"get-content", "select-string", "import-csv", "import-clixml", "get-filehash", "format-hex",
                     "import-powershelldatafile", "get-item", "get-childitem", "test-path", "resolve-path",
                     "copy-item", "move-item", "compress-archive", "expand-archive", "get-acl", "get-itemproperty",
                     "start-bitstransfer"})  # fmt: skip
WRITERS = frozenset({"set-content", "add-content", "out-file", "new-item", "clear-content", "tee-object",
                     "export-csv", "export-clixml", "set-item", "rename-item", "set-acl", "mkdir"})  # fmt: skip
NO_FILE_ARGUMENTS = frozenset({
    "write-output", "write-host", "write-error", "write-warning", "write-verbose", "write-debug",
    "write-information", "select-object", "where-object", "foreach-object", "sort-object", "measure-object",
    "group-object", "format-table", "format-list", "format-wide", "format-custom", "out-host", "out-null",
    "out-string", "out-default", "convertto-json", "convertfrom-json", "get-date", "start-sleep", "get-command",
    "get-help", "help", "get-process", "get-service", "get-member", "get-unique", "compare-object", "get-variable",
    "get-alias", "get-history", "get-location", "get-psdrive", "clear-host", "get-random", "new-guid",
    "get-uptime", "get-host", "get-culture", "get-module", "test-connection",
})  # fmt: skip
"""Cmdlets whose words are never files, so they give policies no paths (`Write-Output .env` reads nothing)."""
DOWNLOADERS = frozenset({"invoke-webrequest", "invoke-restmethod", "start-bitstransfer", "curl", "wget"})
REMOTE_CODE_RUNNERS = frozenset({"mshta", "regsvr32", "msiexec", "rundll32", "cscript", "wscript", "certutil",
                                 "bitsadmin", "installutil", "msbuild", "regasm", "regsvcs", "odbcconf"})  # fmt: skip
"""Windows programs that fetch and run code given a URL (or a `javascript:` one): `mshta http://x/a.hta`."""
DOWNLOAD_OUTPUTS = frozenset({"outfile", "destination", "o", "output", "output-document"})
"""The options naming the file a download is written to (`-OutFile`, curl's `-o`/`--output`, wget's `-O`)."""

HIDDEN_CMDLETS = {
    "invoke-history": "runs an earlier command from the history",
    "set-alias": "redefines what a command name means",
    "new-alias": "redefines what a command name means",
    "import-alias": "redefines what command names mean",
    "set-psbreakpoint": "runs code when a breakpoint is hit",
    "register-objectevent": "runs code when an event fires",
    "register-engineevent": "runs code when an event fires",
    "register-wmievent": "runs code when an event fires",
    "new-module": "defines commands from a script block at run time",
}
"""Cmdlets after which the line's remaining names cannot be trusted to mean what they say."""
VARIABLE_SETTERS = frozenset({"set-variable", "new-variable", "clear-variable", "remove-variable"})
"""Cmdlets that set variables by name: after one, no variable on the line is taken as known."""
PROVIDER_DEFINITIONS = ("function:", "alias:")
"""`Set-Item function:ls {...}` and `New-Item alias:...` redefine names through a provider path."""

STATIC_CALLS = {
    "math": None, "string": None, "char": None, "int": None, "int32": None, "int64": None, "long": None,
    "double": None, "decimal": None, "bool": None, "boolean": None, "datetime": None, "timespan": None,
    "guid": None, "version": None, "regex": None, "text.regularexpressions.regex": None, "uri": None,
    "io.path": None, "text.encoding": None, "bitconverter": None,
    "convert": frozenset({"tobase64string", "frombase64string", "toint32", "toint64", "tostring", "toboolean",
                          "todouble", "tochar", "tobyte", "tohexstring", "fromhexstring"}),
    "environment": frozenset({"getenvironmentvariable", "getfolderpath", "getlogicaldrives",
                              "expandenvironmentvariables", "getcommandlineargs"}),
    "net.servicepointmanager": frozenset(),
    "runtime.interopservices.runtimeinformation": frozenset({"isosplatform"}),
}  # fmt: skip
"""Static .NET calls that only compute (`None`: every method of the type). Any other `[Type]::Method(...)` is code
keycardd cannot see into: `[IO.File]::ReadAllText`, `[Diagnostics.Process]::Start`, `[ScriptBlock]::Create`."""

INSTANCE_METHODS = frozenset({
    "tostring", "replace", "split", "trim", "trimstart", "trimend", "substring", "contains", "startswith",
    "endswith", "toupper", "tolower", "toupperinvariant", "tolowerinvariant", "indexof", "lastindexof", "padleft",
    "padright", "equals", "gettype", "getstring", "getbytes", "join", "add", "containskey", "containsvalue",
    "getenumerator", "format", "compareto", "tochararray", "where", "foreach", "insert", "isnullorempty",
    "normalize", "getvalue", "haskey", "clone", "toarray", "tolist", "indexofany", "gethashcode", "match",
    "matches", "isupper", "islower", "adddays", "addhours", "addminutes", "addseconds", "tofiletime",
    "touniversaltime", "tolocaltime", "toshortdatestring", "tolongdatestring", "getfilename", "getextension",
})  # fmt: skip
"""Instance methods that only compute on a value. Any other `.Method(...)` (`.Delete()`, `.DownloadString()`,
`.Invoke()`, `.Start()`) makes the line unknown: keycardd does not know what object it is called on."""
