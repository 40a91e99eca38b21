"""What `python3 -c CODE` (or a static heredoc) does: programs it runs, files it changes or reads, hosts it reaches.

The code is parsed with the standard library's `ast`, never run. Arguments are resolved where they are literals or
simple literal expressions (`+`, `%`, f-strings, `os.path.join`/`expanduser`, `Path.home() / 'x'`, `shlex.split`,
names assigned once to such a value). Each call that runs a program, changes or reads a file or opens a connection
becomes an `Effect` (see `_effects`). Sound in the dangerous direction: such a call with an argument only known at
run time, and every way of reaching those functions that is not a plain call (`getattr(os, name)`, `exec`,
`__import__(x)`, `ctypes`, `map(os.remove, ...)`, `__subclasses__`), is `Unseen`; reads with a run-time path are not
reported (reading is what `cat $f` does too).
"""

from __future__ import annotations

import ast
import os
import posixpath
import re
import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from keycardd.shell._effects import (
    NO_STDIN,
    Effect,
    RunsArgv,
    Unseen,
    changes_attributes,
    connects,
    copies,
    deletes,
    links,
    makes_directory,
    moves,
    reads,
    removes_directory,
    runs,
    runs_line,
    writes,
)
from keycardd.shell._words import Word

_TRIGGER = re.compile(r"import|open|exec|eval|compile|getattr|breakpoint|help|__|globals|locals|vars|setattr")
"""Code without any of these can reach no module and no dangerous builtin: nothing to parse (the common case)."""
_MAX_CODE = 64 * 1024
_MAX_VALUE = 16 * 1024
"""Literal values longer than this (`'x' * 10**9` is not evaluated at all) are unknown."""


class _Unknown:
    """A value only known at run time."""


UNKNOWN: Any = _Unknown()

_MODULE_ALIASES = {"posix": "os", "nt": "os", "posixpath": "os.path", "ntpath": "os.path", "_io": "io",
                   "builtins": "", "__builtin__": ""}  # fmt: skip
"""Other names of the same modules (`""` is the builtins module: `builtins.exec` is `exec`)."""
_RISKY_MODULES = ("subprocess", "pty", "ctypes", "cffi", "importlib", "runpy", "pickle", "_pickle", "marshal", "shelve",
                  "code", "codeop", "pdb", "bdb", "pydoc", "socket", "requests", "httpx", "urllib", "http",
                  "ftplib", "smtplib", "telnetlib", "xmlrpc", "webbrowser", "_posixsubprocess", "multiprocessing",
                  "concurrent", "types", "sys.modules", "gc", "asyncio.subprocess", "commands", "popen2", "platform",
                  "distutils", "aiohttp", "urllib3", "paramiko", "fabric", "sh", "plumbum", "pexpect", "zipimport",
                  "tarfile", "zipfile", "sqlite3", "dbm", "logging.handlers", "operator", "os.environ",
                  "fileinput")  # fmt: skip
"""Modules (and members) every use of which must be one this module models; any other use is unseen code."""
_SAFE_MEMBERS = frozenset({
    "subprocess.PIPE", "subprocess.STDOUT", "subprocess.DEVNULL", "subprocess.CalledProcessError",
    "subprocess.TimeoutExpired", "subprocess.SubprocessError", "subprocess.CompletedProcess", "socket.AF_INET",
    "socket.AF_INET6", "socket.SOCK_STREAM", "socket.SOCK_DGRAM", "socket.socket", "socket.timeout",
    "socket.gethostname", "socket.error", "urllib.parse", "urllib.error", "http.HTTPStatus", "http.server",
    "importlib.metadata", "importlib.resources", "platform.system", "platform.machine", "platform.release",
    "platform.python_version", "platform.platform", "platform.node", "platform.version", "platform.uname",
    "platform.architecture", "platform.processor", "platform.python_implementation", "multiprocessing.cpu_count",
    "concurrent.futures", "types.SimpleNamespace", "types.MappingProxyType", "operator.add", "operator.itemgetter",
    "os.environ.get", "os.environ.items", "os.environ.keys", "os.environ.values", "os.environ.copy",
    "requests.exceptions", "httpx.HTTPError", "logging.handlers", "sys.modules.keys",
})  # fmt: skip
"""Members of risky modules that run, change and reach nothing (prefixes: `urllib.parse.quote` is safe too)."""
_OS_RISKY = frozenset({"system", "popen", "fork", "forkpty", "kill", "killpg", "remove", "unlink", "rmdir",
                       "removedirs", "rename", "renames", "replace", "mkdir", "makedirs", "chmod", "lchmod", "fchmod",
                       "chown", "lchown", "fchown", "symlink", "link", "truncate", "ftruncate", "utime", "mkfifo",
                       "mknod", "open", "chdir", "fchdir", "chroot", "putenv", "unsetenv", "startfile", "setuid",
                       "setgid", "seteuid", "setegid", "setreuid", "setregid", "setresuid", "setresgid",
                       "memfd_create", "posix_spawn", "posix_spawnp", "environb", "register_at_fork",
                       "add_dll_directory"})  # fmt: skip
_SHUTIL_RISKY = frozenset({"rmtree", "copy", "copy2", "copyfile", "copytree", "copymode", "copystat", "copyfileobj",
                           "move", "chown", "make_archive", "unpack_archive", "register_archive_format",
                           "register_unpack_format"})  # fmt: skip
_SYS_RISKY = frozenset({"modules", "_getframe", "meta_path", "path_hooks", "settrace", "setprofile", "addaudithook",
                        "breakpointhook", "excepthook", "displayhook", "__stdout__", "__stdin__",
                        "__stderr__"})  # fmt: skip
_RISKY_BUILTINS = frozenset({"exec", "eval", "compile", "__import__", "getattr", "setattr", "delattr", "globals",
                             "locals", "vars", "breakpoint", "help", "__builtins__", "__loader__", "__spec__",
                             "open"})  # fmt: skip
_SAFE_DUNDERS = frozenset({"__name__", "__doc__", "__file__", "__version__", "__init__", "__main__", "__all__",
                           "__len__", "__str__", "__repr__", "__annotations__", "__enter__", "__exit__"})  # fmt: skip
_HOLDS_RISKY = frozenset({"os", "shutil", "sys", "asyncio", "logging", "pathlib", "io", "codecs", "gzip", "bz2",
                          "lzma", ""})  # fmt: skip
"""Modules with risky members: passing the module itself around (`f(os)`) hides which member is used."""
_PATH_CLASSES = frozenset({"pathlib.Path", "pathlib.PosixPath", "pathlib.PurePath", "pathlib.PurePosixPath"})
_PATH_CHANGES = frozenset({"unlink", "rmdir", "write_text", "write_bytes", "touch", "mkdir", "chmod", "lchmod",
                           "rename", "symlink_to", "hardlink_to", "link_to", "rmtree", "copy", "copytree", "move",
                           "extractall", "extract"})  # fmt: skip
"""Method names that change files whichever object they are called on (`p.unlink()` with `p` from a glob)."""
_HTTP_VERBS = frozenset({"get", "post", "put", "patch", "delete", "head", "options", "stream", "request"})
_OPEN_FUNCTIONS = frozenset({"open", "io.open", "io.FileIO", "codecs.open", "gzip.open", "bz2.open", "lzma.open",
                             "os.fdopen"})  # fmt: skip
_BINDS = (ast.Import, ast.ImportFrom, ast.Assign, ast.AugAssign, ast.AnnAssign, ast.NamedExpr, ast.FunctionDef,
          ast.AsyncFunctionDef, ast.ClassDef, ast.Global, ast.Nonlocal, ast.Delete, ast.For, ast.With)  # fmt: skip
"""Statements that bind names: in code `exec` runs, they may change what the calling code's names mean."""


@dataclass
class _Reader:
    """One pass over a parsed module: its import names, its once-assigned names, then every call and reference."""

    home: str
    effects: list[Effect] = field(default_factory=list)
    imports: dict[str, str] = field(default_factory=dict)
    """Local name -> the module or member it names (`s` -> `subprocess` for `import subprocess as s`)."""
    star: list[str] = field(default_factory=list)
    bindings: dict[str, ast.expr] = field(default_factory=dict)
    """Names bound exactly once in the whole code, by `name = expr`: their value is that expression's."""
    parents: dict[ast.AST, ast.AST] = field(default_factory=dict)
    values: dict[ast.AST, Any] = field(default_factory=dict)
    """Values already computed, per node."""
    environment: list[str] = field(default_factory=list)
    environment_unknown: bool = False
    chdir: list[str | None] = field(default_factory=list)
    depth: int = 0

    # ---- names -------------------------------------------------------------------------------------------

    def collect(self, tree: ast.AST) -> None:
        counts: dict[str, int] = {}
        imported: dict[str, set[str]] = {}
        values: dict[str, ast.expr] = {}
        for node in ast.walk(tree):
            for child in ast.iter_child_nodes(node):
                self.parents[child] = node
            if isinstance(node, ast.Import):
                for alias in node.names:
                    local = alias.asname or alias.name.split(".")[0]
                    imported.setdefault(local, set()).add(_module(alias.name if alias.asname else local))
            elif isinstance(node, ast.ImportFrom):
                base = _module(("." * node.level) + (node.module or ""))
                for alias in node.names:
                    if alias.name == "*":
                        self.star.append(base)
                    else:
                        imported.setdefault(alias.asname or alias.name, set()).add(f"{base}.{alias.name}")
            elif isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
                counts[node.id] = counts.get(node.id, 0) + 1
                parent = self.parents.get(node)
                if isinstance(parent, ast.Assign) and len(parent.targets) == 1 and parent.targets[0] is node:
                    values[node.id] = parent.value
            elif isinstance(node, ast.arg):
                counts[node.arg] = counts.get(node.arg, 0) + 1
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                counts[node.name] = counts.get(node.name, 0) + 1
            elif isinstance(node, ast.Global | ast.Nonlocal):
                for name in node.names:
                    counts[name] = counts.get(name, 0) + 2  # assigned from another scope: not a single binding
        for name, modules in imported.items():
            if len(modules) > 1 or name in counts:  # `import os` and `os = x`: which one a use means is unknown
                self._unseen(f"python code binds `{name}` to more than one thing")
            self.imports[name] = min(modules)
        self.bindings = {name: value for name, value in values.items() if counts.get(name) == 1}

    def qualified(self, node: ast.expr, depth: int = 0) -> str | None:
        """The module member `node` names (`os.system` for `os.system`, `s.run` with `import subprocess as s`,
        `f` after `f = os.system`, `getattr(os, 'system')`, `__import__('os')`), or None."""
        if depth > 16:
            return None
        if isinstance(node, ast.Name):
            if node.id in self.imports:
                return self.imports[node.id]
            if node.id == "__builtins__" and node.id not in self.bindings:
                return ""  # the builtins module: `__builtins__.exec` is `exec`
            if node.id in self.bindings:
                return self.qualified(self.bindings[node.id], depth + 1)
            for module in self.star:
                if _risky(f"{module}.{node.id}"):
                    return f"{module}.{node.id}"
            return node.id if node.id in _RISKY_BUILTINS or node.id in ("open",) else None
        if isinstance(node, ast.Attribute):
            base = self.qualified(node.value, depth + 1)
            if base is None:
                return None
            return f"{base}.{node.attr}" if base else node.attr  # "" is the builtins module
        if isinstance(node, ast.Call):
            callee = self.qualified(node.func, depth + 1)
            if callee in ("__import__", "importlib.import_module") and node.args:
                name = self.value(node.args[0])
                return _module(name) if isinstance(name, str) else None
            if callee == "getattr" and len(node.args) >= 2:
                attr = self.value(node.args[1])
                base = self.qualified(node.args[0], depth + 1)
                if base is None or not isinstance(attr, str):
                    return None
                return f"{base}.{attr}" if base else attr
        return None

    # ---- values ------------------------------------------------------------------------------------------

    def value(self, node: ast.expr | None, depth: int = 0) -> Any:
        """The value of a literal expression (str, bytes, int, list, tuple, dict, PurePosixPath), else UNKNOWN."""
        if node is None or depth > 32:
            return UNKNOWN
        if node in self.values:  # each node once: `a1 = [a0, a0]; a2 = [a1, a1]; ...` stays linear
            return self.values[node]
        try:
            result = self._value(node, depth)
        except (TypeError, ValueError, KeyError, IndexError, AttributeError, OverflowError, ZeroDivisionError):
            result = UNKNOWN
        if isinstance(result, str | bytes | list | tuple | dict) and len(str(result)) > _MAX_VALUE:
            result = UNKNOWN
        self.values[node] = result
        return result

    def _value(self, node: ast.expr, depth: int) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.JoinedStr):
            parts = [self.value(part, depth + 1) for part in node.values]
            return UNKNOWN if any(p is UNKNOWN for p in parts) else "".join(str(p) for p in parts)
        if isinstance(node, ast.FormattedValue):
            inner = self.value(node.value, depth + 1)
            spec = self.value(node.format_spec, depth + 1) if node.format_spec is not None else ""
            if inner is UNKNOWN or spec is UNKNOWN:
                return UNKNOWN
            if node.conversion == 115:  # !s
                inner = str(inner)
            elif node.conversion in (114, 97):  # !r, !a
                inner = repr(inner) if node.conversion == 114 else ascii(inner)
            return format(inner, spec) if _bounded_format(str(spec)) else UNKNOWN
        if isinstance(node, ast.List | ast.Tuple | ast.Set):
            items = [self.value(item, depth + 1) for item in node.elts]
            if any(item is UNKNOWN for item in items) or any(isinstance(i, ast.Starred) for i in node.elts):
                return UNKNOWN
            return items if isinstance(node, ast.List | ast.Set) else tuple(items)
        if isinstance(node, ast.Dict):
            if any(key is None for key in node.keys):
                return self._spread_environ(node, depth)
            keys = [self.value(key, depth + 1) for key in node.keys]
            values = [self.value(value, depth + 1) for value in node.values]
            return UNKNOWN if UNKNOWN in (*keys, *values) else dict(zip(keys, values, strict=True))
        if isinstance(node, ast.BinOp):
            left, right = self.value(node.left, depth + 1), self.value(node.right, depth + 1)
            if left is UNKNOWN or right is UNKNOWN:
                return UNKNOWN
            if isinstance(node.op, ast.Add) and type(left) is type(right) and isinstance(left, str | bytes | list):
                return left + right
            if isinstance(node.op, ast.Mod) and isinstance(left, str) and _bounded_format(left):
                return left % right
            if (
                isinstance(node.op, ast.Div)
                and isinstance(left, PurePosixPath)
                and isinstance(right, str | PurePosixPath)
            ):
                return left / right
            return UNKNOWN
        if isinstance(node, ast.Name):
            if node.id in self.bindings and node.id not in self.imports:
                return self.value(self.bindings[node.id], depth + 1)
            return UNKNOWN
        if isinstance(node, ast.Subscript):
            if self.qualified(node.value) in ("os.environ", "os.environb") and self.value(node.slice) == "HOME":
                return self.home or UNKNOWN
            return UNKNOWN
        if isinstance(node, ast.Attribute):
            base = self.value(node.value, depth + 1)
            if isinstance(base, PurePosixPath) and node.attr in ("parent", "name", "stem", "suffix"):
                return getattr(base, node.attr)
            return UNKNOWN
        if isinstance(node, ast.Call):
            return self._call_value(node, depth)
        return UNKNOWN

    def _spread_environ(self, node: ast.Dict, depth: int) -> Any:
        """`{**os.environ, 'X': 'y'}`: the environment plus literal entries (the literal ones are the change)."""
        result: dict[Any, Any] = {}
        for key, value in zip(node.keys, node.values, strict=True):
            if key is None:
                if self.qualified(value) != "os.environ":
                    return UNKNOWN
                continue
            pair = (self.value(key, depth + 1), self.value(value, depth + 1))
            if UNKNOWN in pair:
                return UNKNOWN
            result[pair[0]] = pair[1]
        return result

    def _call_value(self, node: ast.Call, depth: int) -> Any:
        callee = self.qualified(node.func)
        args = [self.value(arg, depth + 1) for arg in node.args]
        if any(isinstance(arg, ast.Starred) for arg in node.args) or UNKNOWN in args or node.keywords:
            return UNKNOWN
        if callee is not None:
            return self._function_value(callee, args)
        if isinstance(node.func, ast.Attribute):  # a method of a literal value
            base = self.value(node.func.value, depth + 1)
            return self._method_value(base, node.func.attr, args)
        return UNKNOWN

    def _function_value(self, callee: str, args: list[Any]) -> Any:
        texts = [str(a) if isinstance(a, str | PurePosixPath) else a for a in args]
        if callee == "os.path.expanduser" and len(texts) == 1 and isinstance(texts[0], str):
            return self._expand(texts[0])
        if callee == "os.path.join" and texts and all(isinstance(t, str) for t in texts):
            return posixpath.join(*texts)
        if callee in ("os.path.abspath", "os.path.normpath", "os.path.realpath") and len(texts) == 1:
            return posixpath.normpath(texts[0])
        if callee in ("os.path.dirname", "os.path.basename") and len(texts) == 1:
            return getattr(posixpath, callee.rsplit(".", 1)[1])(texts[0])
        if callee in ("os.getcwd", "pathlib.Path.cwd") and not args:
            return "." if callee == "os.getcwd" else PurePosixPath(".")
        if callee in ("os.getenv", "os.environ.get") and texts[:1] == ["HOME"]:
            return self.home or UNKNOWN
        if callee == "pathlib.Path.home" and not args:
            return PurePosixPath(self.home) if self.home else UNKNOWN
        if callee in _PATH_CLASSES and all(isinstance(t, str) for t in texts):
            return PurePosixPath(*texts)
        if callee in ("str", "os.fspath") and len(args) == 1 and isinstance(args[0], str | PurePosixPath):
            return str(args[0])
        if callee == "shlex.split" and len(texts) == 1 and isinstance(texts[0], str):
            return shlex.split(texts[0])
        if callee in ("shlex.join", "shlex.quote") and len(args) == 1:
            return getattr(shlex, callee.rsplit(".", 1)[1])(args[0])
        return UNKNOWN

    def _method_value(self, base: Any, method: str, args: list[Any]) -> Any:
        if isinstance(base, PurePosixPath):
            if method == "expanduser" and not args:
                return PurePosixPath(self._expand(str(base)))
            if method in ("resolve", "absolute") and not args:
                return base
            if method == "joinpath":
                return base.joinpath(*args)
            if method in ("with_name", "with_suffix"):
                return getattr(base, method)(*args)
            return UNKNOWN
        if not isinstance(base, str) or not _bounded_format(base):
            return UNKNOWN
        if method == "join" and len(args) == 1 and isinstance(args[0], list | tuple):
            size = len(base) * len(args[0]) + sum(len(str(item)) for item in args[0])
            return base.join(args[0]) if size <= _MAX_VALUE else UNKNOWN
        if method in ("format", "strip", "lower", "upper", "encode"):  # none multiplies the text's length
            return getattr(base, method)(*args)
        return UNKNOWN

    def _expand(self, text: str) -> Any:
        if not text.startswith("~"):
            return text
        if not self.home:
            return UNKNOWN
        head, slash, rest = text[1:].partition("/")
        base = self.home if not head else posixpath.join(posixpath.dirname(self.home), head)
        return base + slash + rest if slash else base

    # ---- the walk ------------------------------------------------------------------------------------------

    def read(self, tree: ast.AST) -> None:
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                self._call(node)
            elif isinstance(node, ast.Attribute) and node.attr.startswith("__") and node.attr not in _SAFE_DUNDERS:
                self._unseen(f"python code uses `{node.attr}`, which reaches any function")
            elif isinstance(node, ast.Name | ast.Attribute):
                self._reference(node)
            elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store | ast.Del):
                self._environment_store(node)

    def _reference(self, node: ast.Name | ast.Attribute) -> None:
        """A risky function or module used other than by calling it or reading its members: unseen code."""
        parent = self.parents.get(node)
        if isinstance(parent, ast.Attribute) and parent.value is node:
            return  # `os.system`: the member is what is checked
        if isinstance(parent, ast.Call) and parent.func is node:
            return  # a call: `_call` checks it
        if self.binds(parent, node):
            return  # `f = os.system`: every use of f is checked as a use of os.system
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            return
        name = self.qualified(node)
        if name is None:
            return
        if self._literal_getattr_of(parent, node):
            return  # `getattr(os, 'system')`: the member is what the call's result is checked as
        if not (_risky(name) or name in _HOLDS_RISKY):  # a module passed around hides which member is used
            return
        if name.startswith("os.environ") and isinstance(parent, ast.Subscript | ast.Compare):
            return  # `os.environ['X']` read, `'X' in os.environ`
        self._unseen(f"python code uses `{name or 'builtins'}` other than by calling it with literal arguments")

    def _literal_getattr_of(self, parent: ast.AST | None, node: ast.AST) -> bool:
        """Whether `parent` is `getattr(node, 'literal')`."""
        if not isinstance(parent, ast.Call) or len(parent.args) < 2 or parent.args[0] is not node:
            return False
        return self.qualified(parent.func) == "getattr" and isinstance(self.value(parent.args[1]), str)

    def binds(self, parent: ast.AST | None, node: ast.AST) -> bool:
        """Whether `parent` is `name = node` for a name bound only there (at module or function level: a class
        attribute is reached as `X.name`, which is not followed)."""
        if not isinstance(parent, ast.Assign) or parent.value is not node or len(parent.targets) != 1:
            return False
        target = parent.targets[0]
        in_class = isinstance(self.parents.get(parent), ast.ClassDef)
        return isinstance(target, ast.Name) and target.id in self.bindings and not in_class

    def _unseen(self, why: str) -> None:
        self.effects.append(Unseen(why))

    def _environment_store(self, node: ast.Subscript) -> None:
        if self.qualified(node.value) not in ("os.environ", "os.environb"):
            return
        parent = self.parents.get(node)
        key = self.value(node.slice)
        value = self.value(parent.value) if isinstance(parent, ast.Assign) else UNKNOWN  # `+=`, `del`: not known
        if isinstance(key, str) and isinstance(value, str):
            self.environment.append(f"{key}={value}")
        else:
            self.environment_unknown = True

    # ---- calls ---------------------------------------------------------------------------------------------

    def _call(self, node: ast.Call) -> None:
        name = self.qualified(node.func)
        spread = any(isinstance(arg, ast.Starred) for arg in node.args) or any(k.arg is None for k in node.keywords)
        if name is not None and spread and (name in _HANDLERS or name in _OPEN_FUNCTIONS) and name != "getattr":
            self._unseen(f"python code calls `{name}` with arguments spread at run time (`*`, `**`)")
            return
        if name is not None:
            handler = _HANDLERS.get(name)
            if handler is not None:
                handler(self, name, node)
                return
            if _risky(name) and name not in ("open",):
                self._unseen(f"python code calls `{name}`, which keycardd does not model")
                return
            if name in _OPEN_FUNCTIONS:
                self._open(node, node.args[0] if node.args else _keyword(node, "file"), 1)
            return
        if isinstance(node.func, ast.Attribute):
            self._method(node, node.func)

    def _method(self, node: ast.Call, func: ast.Attribute) -> None:
        """A method of a value: a path's (`Path('x').unlink()`), a socket's `connect`, a session's `get`."""
        base = self.value(func.value)
        method = func.attr
        if isinstance(base, PurePosixPath):
            self._path_method(node, str(base), method)
            return
        if method in ("connect", "connect_ex", "sendto"):
            address = self.value(node.args[-1] if node.args else None)
            if isinstance(address, tuple) and address and isinstance(address[0], str):
                self.effects.append(connects(f"tcp://{address[0]}:{address[1] if len(address) > 1 else 0}"))
            elif self._uses("socket"):
                self._unseen(f"python code calls `.{method}` with an address only known at run time")
            return
        if method in _PATH_CHANGES:
            self._unseen(f"python code calls `.{method}()` on a path only known at run time")
        elif method == "open" and self._write_mode(node, 0):
            self._unseen("python code opens a path only known at run time for writing")

    def _uses(self, module: str) -> bool:
        return any(name == module or name.startswith(module + ".") for name in self.imports.values())

    def _path_method(self, node: ast.Call, path: str, method: str) -> None:
        args = [self.value(arg) for arg in node.args]
        target = str(args[0]) if args and isinstance(args[0], str | PurePosixPath) else None
        if method in ("unlink", "rmdir"):
            self._add(deletes(path) if method == "unlink" else removes_directory(path))
        elif method in ("write_text", "write_bytes", "touch"):
            self._add(writes(path))
        elif method == "mkdir":
            self._add(makes_directory(path))
        elif method in ("chmod", "lchmod"):
            self._add(changes_attributes(path))
        elif method in ("read_text", "read_bytes"):
            self._add(reads(path))
        elif method == "open":
            self._add(writes(path) if self._write_mode(node, 0) else reads(path))
        elif method in ("rename", "replace", "symlink_to", "hardlink_to", "link_to", "move", "copy", "copytree"):
            if target is None:
                self._unseen(f"python code calls `.{method}()` with a target only known at run time")
            elif method in ("rename", "replace", "move"):
                self._add(moves(path, target))
            elif method in ("copy", "copytree"):
                self._add(copies(path, target))
            elif method == "link_to":  # `p.link_to(t)` makes t a hard link to p
                self._add(links(path, target, symbolic=False))
            else:  # `p.symlink_to(t)`, `p.hardlink_to(t)` make p a link to t
                self._add(links(target, path, symbolic=method == "symlink_to"))
        elif method in _PATH_CHANGES:
            self._unseen(f"python code calls `.{method}()` on a path, which keycardd does not model")

    def _add(self, effect: RunsArgv) -> None:
        self.effects.append(effect)

    def _open(self, node: ast.Call, path_node: ast.expr | None, mode_index: int) -> None:
        path = self.value(path_node)
        if isinstance(path, int):
            return  # a file descriptor
        write = self._write_mode(node, mode_index)
        if not isinstance(path, str | bytes | PurePosixPath):
            if write:
                self._unseen("python code opens a file only known at run time for writing")
            return
        text = os.fsdecode(path) if isinstance(path, bytes) else str(path)
        self._add(writes(text) if write else reads(text))

    def _write_mode(self, node: ast.Call, index: int) -> bool:
        if any(isinstance(arg, ast.Starred) for arg in node.args) or any(k.arg is None for k in node.keywords):
            return True  # `p.open(**options)`: the mode is only known at run time
        mode_node = node.args[index] if len(node.args) > index else _keyword(node, "mode")
        if mode_node is None:
            return False
        mode = self.value(mode_node)
        return not isinstance(mode, str) or bool(set(mode) & set("wax+"))

    def paths(self, node: ast.Call, count: int, start: int = 0) -> list[str] | None:
        """The first `count` arguments from `start` as paths, or None (recorded as unseen) when one is not literal."""
        texts: list[str] = []
        for arg in node.args[start : start + count]:
            value = self.value(arg)
            if not isinstance(value, str | bytes | PurePosixPath):
                return None
            texts.append(os.fsdecode(value) if isinstance(value, bytes) else str(value))
        return texts if len(texts) == count else None

    def process(self, effect: Effect, node: ast.Call) -> None:
        """A program the code starts, with the environment changes the code made (`env K=V ...`)."""
        if isinstance(effect, Unseen):
            self.effects.append(effect)
            return
        assignments = list(self.environment)
        environment = _keyword(node, "env")
        if environment is not None:
            value = self.value(environment)
            if not isinstance(value, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in value.items()
            ):
                self._unseen("python code starts a program with an environment only known at run time")
                return
            assignments += [f"{key}={item}" for key, item in value.items()]
        if self.environment_unknown:
            self._unseen("python code starts a program after changing the environment at run time")
            return
        cwd = _keyword(node, "cwd")
        argv = effect.argv
        if cwd is not None:
            directory = self.value(cwd)
            if not isinstance(directory, str | PurePosixPath):
                self._unseen("python code starts a program in a directory only known at run time")
                return
            argv = (
                Word("sh"),
                Word("-c"),
                Word(f"cd {shlex.quote(str(directory))} && {shlex.join(w.text for w in argv)}"),
            )
        if assignments:
            argv = (Word("env"), *(Word(a) for a in assignments), *argv)
        self.effects.append(RunsArgv(argv, self._stdin(node, effect.stdin)))

    def _stdin(self, node: ast.Call, inherited: str) -> str:
        """What a started program reads: python's own stdin, unless the code feeds it (`input=`, `stdin=PIPE`,
        `os.popen(cmd, 'w')`): then what it reads, a shell's commands included, is only known at run time."""
        fed = _keyword(node, "input") or _keyword(node, "stdin")
        popen_mode = self.value(node.args[1]) if self.qualified(node.func) == "os.popen" and len(node.args) > 1 else "r"
        if (fed is not None and self.qualified(fed) != "subprocess.DEVNULL") or popen_mode != "r":
            return "input the python code writes to it"
        return inherited


def _bounded_format(text: str) -> bool:
    """A format string or spec without a width or precision of 1,000 or more (`f'{1:>999999999}'` would build a
    gigabyte string in the daemon)."""
    return re.search(r"\d{4}", text) is None


def _keyword(node: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in node.keywords if k.arg == name), None)


def _module(name: str) -> str:
    head, _, rest = name.partition(".")
    if head in _MODULE_ALIASES:
        mapped = _MODULE_ALIASES[head]
        return f"{mapped}.{rest}" if mapped and rest else (mapped or rest)
    return name


def _risky(name: str) -> bool:
    if name in _SAFE_MEMBERS or any(name.startswith(safe + ".") for safe in _SAFE_MEMBERS):
        return False
    if name in _RISKY_BUILTINS:
        return True
    head, _, member = name.rpartition(".")
    if head == "os" and (member in _OS_RISKY or member.startswith(("exec", "spawn"))):
        return True
    if head == "shutil" and member in _SHUTIL_RISKY:
        return True
    if head == "sys" and member in _SYS_RISKY:
        return True
    if head == "asyncio" and member in ("create_subprocess_shell", "create_subprocess_exec", "subprocess"):
        return True
    if head == "logging" and member in ("FileHandler", "basicConfig"):
        return True
    if head in _PATH_CLASSES and member not in ("home", "cwd"):
        return True  # `Path.unlink(p)`: a method called on a path given as an argument
    return any(name == risky or name.startswith(risky + ".") for risky in _RISKY_MODULES)


# ---- handlers: one per modelled function -----------------------------------------------------------------------

Handler = Callable[[_Reader, str, ast.Call], None]


def _shell_line(reader: _Reader, name: str, node: ast.Call) -> None:
    """os.system(LINE), os.popen(LINE), subprocess.getoutput(LINE), asyncio.create_subprocess_shell(LINE)."""
    line = reader.value(node.args[0] if node.args else _keyword(node, "cmd") or _keyword(node, "command"))
    if isinstance(line, bytes):
        line = os.fsdecode(line)
    if not isinstance(line, str):
        reader.process(Unseen(f"python code runs `{name}` with a command only known at run time"), node)
        return
    reader.process(runs_line(line), node)


def _subprocess(reader: _Reader, name: str, node: ast.Call) -> None:
    """subprocess.run/call/check_call/check_output/Popen: an argv, or a line with `shell=True`."""
    args = reader.value(node.args[0] if node.args else _keyword(node, "args"))
    shell = _keyword(node, "shell")
    shell_value = reader.value(shell) if shell is not None else False
    if _keyword(node, "executable") is not None or shell_value is UNKNOWN or args is UNKNOWN:
        reader.process(Unseen(f"python code runs `{name}` with a program only known at run time"), node)
        return
    argv = [args] if isinstance(args, str | bytes | PurePosixPath) else args
    if (
        not isinstance(argv, list | tuple)
        or not argv
        or not all(isinstance(a, str | bytes | PurePosixPath) for a in argv)
    ):
        reader.process(Unseen(f"python code runs `{name}` with arguments keycardd cannot read"), node)
        return
    texts = [os.fsdecode(a) if isinstance(a, bytes) else str(a) for a in argv]
    reader.process(runs_line(texts[0]) if shell_value else runs(texts), node)


def _exec_family(reader: _Reader, name: str, node: ast.Call) -> None:
    """os.execl*/execv*/spawnl*/spawnv*/posix_spawn*, pty.spawn, asyncio.create_subprocess_exec."""
    member = name.rsplit(".", 1)[1]
    start = 1 if name.startswith("os.spawn") else 0  # os.spawn*(mode, path, ...)
    values = [reader.value(arg) for arg in node.args[start:]]
    if any(isinstance(arg, ast.Starred) for arg in node.args):
        values = [UNKNOWN]
    argv: Any = UNKNOWN
    if name == "pty.spawn" and values:  # pty.spawn(argv)
        argv = [values[0]] if isinstance(values[0], str) else values[0]
    elif member == "create_subprocess_exec":
        argv = values
    elif member.startswith(("execv", "spawnv", "posix_spawn")) and len(values) >= 2:
        argv = [values[0], *(values[1][1:] if isinstance(values[1], list | tuple) else [UNKNOWN])]
    elif member.startswith(("execl", "spawnl")) and values:
        rest = values[2:-1] if member.endswith("e") else values[2:]
        argv = [values[0], *rest]
    if not isinstance(argv, list | tuple) or not argv or not all(isinstance(a, str | bytes) for a in argv):
        reader.process(Unseen(f"python code runs `{name}` with a program only known at run time"), node)
        return
    reader.process(runs([os.fsdecode(a) if isinstance(a, bytes) else a for a in argv]), node)


def _one_path(make: Callable[[str], RunsArgv]) -> Handler:
    def handler(reader: _Reader, name: str, node: ast.Call) -> None:
        paths = reader.paths(node, 1)
        if paths is None:
            reader._unseen(f"python code calls `{name}` on a path only known at run time")
            return
        reader._add(make(paths[0]))

    return handler


def _two_paths(make: Callable[[str, str], RunsArgv]) -> Handler:
    def handler(reader: _Reader, name: str, node: ast.Call) -> None:
        paths = reader.paths(node, 2)
        if paths is None:
            reader._unseen(f"python code calls `{name}` on a path only known at run time")
            return
        reader._add(make(paths[0], paths[1]))

    return handler


def _open_at(reader: _Reader, name: str, node: ast.Call) -> None:
    """os.open(path, flags): reading only with the literal `os.O_RDONLY`."""
    paths = reader.paths(node, 1)
    flags = node.args[1] if len(node.args) > 1 else _keyword(node, "flags")
    read_only = flags is not None and reader.qualified(flags) == "os.O_RDONLY"
    if paths is None:
        if not read_only:
            reader._unseen("python code opens a file only known at run time with os.open")
        return
    reader._add(reads(paths[0]) if read_only else writes(paths[0]))


def _chdir(reader: _Reader, name: str, node: ast.Call) -> None:
    paths = reader.paths(node, 1)
    reader.chdir.append(paths[0] if paths else None)


def _url(reader: _Reader, name: str, node: ast.Call) -> None:
    """urlopen(URL or Request(URL)), requests.get(URL), httpx.post(URL), HTTPConnection(HOST), FTP(HOST), ..."""
    member = name.rsplit(".", 1)[1]
    target_node = (
        node.args[1]
        if member in ("request", "stream") and len(node.args) > 1
        else (node.args[0] if node.args else None)
    )
    target_node = target_node or _keyword(node, "url") or _keyword(node, "host") or _keyword(node, "address")
    if isinstance(target_node, ast.Call) and (reader.qualified(target_node.func) or "").endswith(".Request"):
        target_node = target_node.args[0] if target_node.args else _keyword(target_node, "url")
    target = reader.value(target_node)
    if isinstance(target, tuple) and target and isinstance(target[0], str):
        target = f"tcp://{target[0]}:{target[1] if len(target) > 1 else 0}"
    if not isinstance(target, str):
        reader._unseen(f"python code calls `{name}` with an address only known at run time")
        return
    if "://" not in target:
        port = reader.value(node.args[1]) if len(node.args) > 1 else 0
        target = f"tcp://{target}:{port if isinstance(port, int) else 0}"
    reader._add(connects(target))
    if member == "urlretrieve" and len(node.args) > 1:
        paths = reader.paths(node, 1, start=1)
        if paths is None:
            reader._unseen("python code downloads to a file only known at run time")
        else:
            reader._add(writes(paths[0]))


def _code_string(reader: _Reader, name: str, node: ast.Call) -> None:
    """exec/eval/compile of a literal string is more Python code, read the same way; anything else is unseen."""
    code = reader.value(node.args[0] if node.args else None)
    if isinstance(code, bytes):
        code = os.fsdecode(code)
    if not isinstance(code, str) or reader.depth >= 4:
        reader._unseen(f"python code runs `{name}` on code only known at run time")
        return
    reader.effects.extend(python_effects(code, home=reader.home, depth=reader.depth + 1, imports=reader.imports))


def _archive(reader: _Reader, name: str, node: ast.Call) -> None:
    """shutil.unpack_archive(FILE, DIR='.'), shutil.make_archive(BASE, ...): the directory or base is written."""
    paths = reader.paths(node, 1)
    target = reader.paths(node, 1, start=1) if name.endswith("unpack_archive") and len(node.args) > 1 else ["."]
    if paths is None or target is None:
        reader._unseen(f"python code calls `{name}` on a path only known at run time")
        return
    reader._add(writes(paths[0] if name.endswith("make_archive") else target[0]))


def _lookup(reader: _Reader, name: str, node: ast.Call) -> None:
    """`getattr(os, 'system')`, `__import__('os')`: with a literal name the member or module is what the call's
    result is used as (checked there); with a name only known at run time, anything at all."""
    name_node = node.args[1] if name == "getattr" and len(node.args) > 1 else (node.args[0] if node.args else None)
    if not isinstance(reader.value(name_node), str) or any(isinstance(a, ast.Starred) for a in node.args):
        reader._unseen(f"python code calls `{name}` with a name only known at run time")
        return
    parent = reader.parents.get(node)
    if isinstance(parent, ast.Call) and parent.func is node:
        return
    if isinstance(parent, ast.Attribute) or reader.binds(parent, node):
        return  # `__import__('os').system`, `m = __import__('os')`: the member or binding is checked
    target = reader.qualified(node)
    if target is not None and _risky(target):
        reader._unseen(f"python code uses `{target}` other than by calling it with literal arguments")


def _harmless(reader: _Reader, name: str, node: ast.Call) -> None:
    """Calls of risky modules that run, change and reach nothing by themselves (`socket.socket()`)."""


_HANDLERS: dict[str, Handler] = {
    "os.system": _shell_line, "os.popen": _shell_line, "subprocess.getoutput": _shell_line,
    "subprocess.getstatusoutput": _shell_line, "asyncio.create_subprocess_shell": _shell_line,
    "commands.getoutput": _shell_line, "platform.popen": _shell_line,
    **dict.fromkeys(("subprocess.run", "subprocess.call", "subprocess.check_call", "subprocess.check_output",
                     "subprocess.Popen"), _subprocess),
    "pty.spawn": _exec_family, "asyncio.create_subprocess_exec": _exec_family,
    **{f"os.{m}": _exec_family for m in ("execl", "execle", "execlp", "execlpe", "execv", "execve", "execvp",
                                         "execvpe", "spawnl", "spawnle", "spawnlp", "spawnlpe", "spawnv", "spawnve",
                                         "spawnvp", "spawnvpe", "posix_spawn", "posix_spawnp")},
    "shutil.rmtree": _one_path(lambda p: deletes(p, recursive=True)),
    "os.remove": _one_path(deletes), "os.unlink": _one_path(deletes),
    "os.rmdir": _one_path(removes_directory), "os.removedirs": _one_path(removes_directory),
    "os.mkdir": _one_path(makes_directory), "os.makedirs": _one_path(makes_directory),
    **{f"os.{m}": _one_path(changes_attributes) for m in ("chmod", "lchmod", "chown", "lchown", "utime")},
    **{f"os.{m}": _one_path(writes) for m in ("truncate", "mkfifo", "mknod")},
    "shutil.chown": _one_path(changes_attributes),
    "os.rename": _two_paths(moves), "os.renames": _two_paths(moves), "os.replace": _two_paths(moves),
    "shutil.move": _two_paths(moves),
    **{f"shutil.{m}": _two_paths(copies) for m in ("copy", "copy2", "copyfile", "copytree", "copymode", "copystat")},
    "os.symlink": _two_paths(lambda target, name: links(target, name, symbolic=True)),
    "os.link": _two_paths(lambda target, name: links(target, name, symbolic=False)),
    "os.open": _open_at, "os.chdir": _chdir,
    "shutil.unpack_archive": _archive, "shutil.make_archive": _archive,
    "sqlite3.connect": _one_path(writes), "logging.FileHandler": _one_path(writes),
    "urllib.request.urlopen": _url, "urllib.request.urlretrieve": _url, "urllib.request.Request": _harmless,
    "http.client.HTTPConnection": _url, "http.client.HTTPSConnection": _url, "socket.create_connection": _url,
    "socket.gethostbyname": _url, "socket.getaddrinfo": _url, "ftplib.FTP": _url, "smtplib.SMTP": _url,
    "smtplib.SMTP_SSL": _url, "telnetlib.Telnet": _url, "webbrowser.open": _url, "xmlrpc.client.ServerProxy": _url,
    **{f"{lib}.{verb}": _url for lib in ("requests", "httpx") for verb in _HTTP_VERBS},
    "getattr": _lookup, "__import__": _lookup, "importlib.import_module": _lookup,
    "exec": _code_string, "eval": _code_string, "compile": _code_string,
}  # fmt: skip


def python_effects(code: str, *, home: str, depth: int = 0, imports: dict[str, str] | None = None) -> list[Effect]:
    """What running `code` with python would do, as far as the code shows it (see the module's docstring).
    `imports`: for code an `exec`/`eval` runs, the names the calling code imported (its globals)."""
    if imports is None and not _TRIGGER.search(code):
        return []
    if len(code) > _MAX_CODE:
        return [Unseen("the python code is too long to analyse")]
    try:
        tree = ast.parse(code)
    except SyntaxError as exc:
        # Python refuses code it cannot compile and runs none of it. But the python that runs it may be newer than
        # keycardd's (new syntax), so only code with nothing that could reach a module or a builtin passes.
        return [
            Unseen(f"keycardd's Python {sys.version_info[0]}.{sys.version_info[1]} cannot parse this code ({exc.msg})")
        ]
    except (ValueError, RecursionError, MemoryError):
        return [Unseen("keycardd cannot parse this python code")]
    reader = _Reader(home=home, depth=depth, imports=dict(imports or {}))
    reader.collect(tree)
    reader.read(tree)
    if imports is not None and any(isinstance(node, _BINDS) for node in ast.walk(tree)):
        reader._unseen("python code runs exec/eval code that binds names the rest of the code may use")
    return _after_chdir(reader)


def _after_chdir(reader: _Reader) -> list[Effect]:
    """`os.chdir(D)` moves the relative paths of every file effect and the directory of every program the code
    starts (the order of calls is not tracked: each is reported both where it was and in D)."""
    if not reader.chdir:
        return reader.effects
    if None in reader.chdir:
        return [*reader.effects, Unseen("python code changes to a directory only known at run time")]
    directories = [directory for directory in reader.chdir if directory is not None]
    found: list[Effect] = []
    for effect in reader.effects:
        found.append(effect)
        if isinstance(effect, RunsArgv) and effect.stdin != NO_STDIN:  # a program: started in each directory too
            line = shlex.join(word.text for word in effect.argv)
            found.extend(runs_line(f"cd {shlex.quote(d)} && {line}", effect.stdin) for d in directories)
        elif isinstance(effect, RunsArgv):
            for directory in directories:
                program, *rest = effect.argv
                moved = (_moved(word, directory) for word in rest)
                found.append(RunsArgv((program, *moved), stdin=NO_STDIN))
    return found


def _moved(word: Word, directory: str) -> Word:
    """A relative operand of a file effect, relative to `directory` instead."""
    if word.text.startswith(("-", "/")):
        return word
    return Word(posixpath.join(directory, word.text))
