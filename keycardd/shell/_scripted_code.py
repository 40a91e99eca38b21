"""perl, ruby, node, php, lua, R, Tcl, AppleScript and Julia inline code: a conservative scan, not a parser.

keycardd has no parser for these languages, so it does not resolve what such code runs or changes. It marks static
code that contains a primitive able to run a program, change a file or evaluate more code (perl's `system`, `exec`,
backquotes, `qx`, `open` with a pipe or `>`, `unlink`, `rmtree`, `rename`; ruby's `system`, `%x`, `File.delete`,
`FileUtils`; node's `child_process`, `fs.rm`/`unlink`/`write*`, `process.binding`, `eval`, ...) as unseen code,
which the default policy's `deny-unseen-code` denies. Code without them (printing, computing, reading) passes: the
primitives are matched as words anywhere in the text, strings and comments included, so spelling one in a comment
makes the line unseen code, never the reverse.
"""

from __future__ import annotations

import re

from keycardd.shell._effects import Effect, Unseen

_PERL = re.compile(
    r"\b(?:system|exec|qx|readpipe|syscall|fork|kill|unlink|rmdir|rmtree|remove_tree|rename|link|symlink|chmod|chown|"
    r"truncate|mkdir|make_path|mkpath|utime|eval|do|require|sysopen|dbmopen|chroot|File::Copy|File::Path|IPC::|"
    r"POSIX|LWP)\b|`|&\s*[{$]|\*\s*\{|->\s*can\b"
)
_PERL_OPEN = re.compile(r"\bopen\s*\(?([^;]*)")
_RUBY = re.compile(
    r"\b(?:system|exec|spawn|fork|syscall|exit!|IO\.(?:popen|sysopen|write|binwrite|copy_stream)|"
    r"File\.(?:delete|unlink|write|binwrite|rename|chmod|lchmod|chown|lchown|symlink|link|truncate|utime|mkfifo)|"
    r"FileUtils|Dir\.(?:delete|rmdir|unlink|mkdir)|Pathname|Open3|PTY|Process\.|Kernel\.|Socket|TCPSocket|UDPSocket|"
    r"Net::|URI\.open|open-uri|eval|instance_eval|class_eval|module_eval|instance_exec|send|public_send|__send__|"
    r"method|define_method|const_get|Marshal|ObjectSpace|binding|require_relative|load|trap|at_exit|Fiddle|DL)\b"
    r"|`|%x"
)
_RUBY_OPEN = re.compile(r"\b(?:open|File\.open|File\.new|IO\.new|IO\.open)\s*\(?([^;\n]*)")
_NODE = re.compile(
    r"\b(?:child_process|process\.binding|_linkedBinding|process\.dlopen|process\.kill|rmSync|rm|rmdir|rmdirSync|"
    r"unlink|unlinkSync|writeFile|writeFileSync|appendFile|appendFileSync|createWriteStream|rename|renameSync|"
    r"copyFile|copyFileSync|cp|cpSync|chmod|chmodSync|chown|chownSync|symlink|symlinkSync|link|linkSync|truncate|"
    r"truncateSync|mkdir|mkdirSync|utimes|utimesSync|eval|Function|vm|worker_threads|Worker|inspector|import|"
    r"module|mainModule|constructor|globalThis|global|Reflect|Deno|Bun)\b"
    r"|\brequire\s*\(\s*(?!['\"][\w./@-]+['\"]\s*\))|\bprocess\s*\["
)
_NODE_OPEN = re.compile(r"\b(?:open|openSync|promises\.open)\s*\(([^;]*)")
_PHP = re.compile(
    r"\b(?:system|exec|shell_exec|passthru|popen|proc_open|pcntl_exec|pcntl_fork|posix_kill|unlink|rmdir|rename|"
    r"copy|link|symlink|chmod|chown|touch|mkdir|tempnam|file_put_contents|fwrite|fputs|ftruncate|eval|assert|"
    r"create_function|include|include_once|require|require_once|call_user_func|call_user_func_array|curl_exec|"
    r"fsockopen|stream_socket_client|mail|putenv|ini_set|dl|FFI|ReflectionFunction|extract|array_map|usort)\b|`|\$\w+\s*\("
)
_PHP_OPEN = re.compile(r"\b(?:fopen|SplFileObject|gzopen)\s*\(([^;]*)")
_LUA = re.compile(
    r"\b(?:os\.execute|os\.remove|os\.rename|os\.exit|io\.popen|io\.output|io\.lines|load|loadstring|loadfile|"
    r"dofile|require|package|debug|setfenv|getfenv|rawset|_G|_ENV|ffi)\b"
)
_LUA_OPEN = re.compile(r"\bio\.open\s*\(([^)]*)")
_R = re.compile(
    r"\b(?:system|system2|shell|shell\.exec|pipe|unlink|file\.remove|file\.rename|file\.copy|file\.create|"
    r"file\.append|file\.symlink|file\.link|dir\.create|Sys\.chmod|Sys\.setenv|writeLines|writeBin|writeChar|"
    r"write|write\.csv|write\.table|saveRDS|save|sink|cat|capture\.output|download\.file|url|socketConnection|"
    r"eval|evalq|parse|source|sys\.source|do\.call|get|match\.fun|library|require|requireNamespace|loadNamespace|"
    r"attach|dyn\.load|\.Call|\.C|\.External|processx|callr)\b|::"
)
_R_OPEN = re.compile(r"\b(?:file|gzfile|bzfile|xzfile)\s*\(([^)]*)")
_TCL = re.compile(
    r"\b(?:exec|open|file|socket|eval|uplevel|source|load|interp|namespace|rename|subst|after|vwait|package|"
    r"cd|glob|http|exit)\b|\["
)
_APPLESCRIPT = re.compile(
    r"\b(?:do\s+shell\s+script|tell|delete|move|duplicate|make|set|write|open|close|run|load|store|launch|activate|"
    r"quit|keystroke|key\s+code|System\s+Events|Finder|Terminal|script|osax|path\s+to)\b",
    re.IGNORECASE,
)
_JULIA = re.compile(
    r"\b(?:run|pipeline|rm|mv|cp|symlink|hardlink|chmod|chown|touch|mkdir|mkpath|mktemp|write|open|download|eval|"
    r"include|include_string|ccall|cglobal|Meta|Base\.|Core\.|Libc|ENV|cd|using|import)\b|`|@eval|@cmd"
)
_NO_OPEN = re.compile(r"(?!)")  # a language whose openers are in its primitives already
_WRITE_MODE = re.compile(
    r"""['"][rbt]*[wax+][rwabtx+]*(?::[\w-]+)?['"]|O_(?:WRONLY|RDWR|CREAT|TRUNC|APPEND)|\bflags\b"""
)
"""A mode that writes: `'w'`, `"a+"`, `'wb'`, `'w:UTF-8'`, an `O_WRONLY` flag, a `flags:` option."""


def scripted_effects(language: str, code: str, operands: list[str], *, loops: bool = False) -> list[Effect]:
    """Unseen code when `code` (perl, ruby or node) holds a primitive that runs, changes or evaluates; else none.
    `loops`: perl's `-n`/`-p`, which read the operands through `<>`."""
    found = _primitive(language, code)
    if found is not None:
        return [Unseen(f"{language} code uses `{found}`, and keycardd does not read {language}: it may run "
                       "programs or change files")]  # fmt: skip
    if language == "perl" and (loops or re.search(r"<(?:ARGV|STDIN)?>", code) is not None):
        piped = next((name for name in operands if name.rstrip().endswith("|") or name.lstrip()[:1] in "|>+"), None)
        if piped is not None:  # perl's `<>` opens each operand with 2-argument open: `'rm -rf ~|'` runs it
            return [Unseen(f"perl's `<>` opens `{piped}` as a pipe or for writing")]
    return []


def _primitive(language: str, code: str) -> str | None:
    pattern, opener = {
        "perl": (_PERL, _PERL_OPEN),
        "ruby": (_RUBY, _RUBY_OPEN),
        "node": (_NODE, _NODE_OPEN),
        "php": (_PHP, _PHP_OPEN),
        "lua": (_LUA, _LUA_OPEN),
        "R": (_R, _R_OPEN),
        "tcl": (_TCL, _NO_OPEN),
        "AppleScript": (_APPLESCRIPT, _NO_OPEN),
        "julia": (_JULIA, _NO_OPEN),
    }[language]
    match = pattern.search(code)
    if match is not None:
        return match[0].strip()
    for opened in opener.finditer(code):
        arguments = opened[1]
        if "|" in arguments or ">" in arguments or _WRITE_MODE.search(arguments):
            return opened[0].strip()[:40]
        if language == "perl" and "<" not in arguments and "$" in arguments.partition(",")[2]:
            return opened[0].strip()[:40]  # 2-argument open of a run-time string: its mode is in the string
    return None
