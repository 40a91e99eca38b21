"""One spelling per file and per host, so a policy rule cannot be dodged by writing the same thing differently.

Policies match facts, not spellings: `~//.ssh/id_rsa`, `${HOME}/.ssh/./id_rsa`, `/home/u/x/../.ssh/id_rsa` and
`~/.SSH/ID_RSA` on a case-insensitive disk are one file, and `2852039166`, `0xA9FEA9FE`, `0251.0376.0251.0376`,
`169.254.43518`, `[::ffff:a9fe:a9fe]` and `169.254.169.254` are one host. Both functions are pure (no I/O: they run
on the hot path for every argument), so what they cannot know is documented rather than looked up:

- `..` is collapsed lexically, as bash's `cd` does; the kernel resolves `link/..` through the symlink instead.
- `~name` is the user's home when `name` is the home directory's last component, `/root` for root, and otherwise
  `~name`'s usual place beside the home directory (no password-database lookup).
- A name that resolves to a metadata address through DNS (`169.254.169.254.nip.io`) is a name.

Where the standard library is right it is used (`ipaddress` for IPv6 and the final dotted quad, `encodings.idna`
for IDNA's mapping, `posixpath`/`ntpath`); where it disagrees with what the connecting programs accept, the programs
win, checked in tests against glibc's `inet_aton`, curl and Node's `URL`: `ipaddress` rejects the short, octal and
hex IPv4 forms that `inet_aton` (and so curl and every getaddrinfo caller) accepts, so those are read here; and
`urllib.parse` ends the authority only at `/?#` and splits userinfo at the last `@`, while WHATWG also ends it
at `\\` and curl splits differently, so `url_hosts` returns every reading.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import ntpath
import posixpath
import re
import sys
import unicodedata
from collections.abc import Mapping
from encodings import idna
from urllib.parse import unquote

from keycardd.config import ConfigError

_WINDOWS_PATH = re.compile(r"^(?:[A-Za-z]:(?:[\\/]|$)|\\\\)")
"""`C:`, `C:\\...`, `C:/...`, and UNC/device paths `\\\\server\\share`, `\\\\?\\C:\\...` (`//x` is POSIX's `/x`)."""
_WINDOWS_DEVICE_PREFIX = re.compile(r"^//[?.]/(?=[A-Za-z]:)")
_WINDOWS_UNC_DEVICE = re.compile(r"^//[?.]/unc/", re.IGNORECASE)
_WINDOWS_ADMIN_SHARE = re.compile(r"^//[^/]+/([A-Za-z])\$(?:/|$)")
"""`\\\\localhost\\c$\\Users` is C:\\Users (the drive's administrative share, on this or another machine)."""
_WINDOWS_STREAM = re.compile(r":(?:[^:/]*):?\$DATA$|::\$DATA$", re.IGNORECASE)
"""`.env::$DATA` and `.env:$DATA` open `.env` itself (NTFS's default data stream)."""
_HOME_VARIABLE = re.compile(r"^(?:\$HOME|\$\{HOME\})(?=/|$)")
_PWD_VARIABLE = re.compile(r"^(?:\$PWD|\$\{PWD\})(?=/|$)")
_PROC_SELF = re.compile(r"^(?:self|thread-self|[0-9]+)$")
"""`/proc/<this>/root/x` is `/x` and `/proc/self/cwd/x` is `<cwd>/x` (outside a chroot, which agents do not use)."""


def case_insensitive_paths(env: Mapping[str, str], platform: str = sys.platform) -> bool:
    """Whether the file system ignores case: `$KEYCARDD_CASE_INSENSITIVE_PATHS` (`1`/`0`), else the platform's default.

    macOS (APFS, HFS+) and Windows (NTFS) ignore case by default, Linux does not. A setting read once at start-up,
    not a probe of the disk per call; a case-sensitive APFS volume or a case-folded ext4 directory is the setting's
    job to describe.
    """
    value = env.get("KEYCARDD_CASE_INSENSITIVE_PATHS", "").strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    if value:
        raise ConfigError(f"KEYCARDD_CASE_INSENSITIVE_PATHS must be 1 or 0, got {value!r}")
    return platform == "darwin" or platform.startswith(("win", "cygwin"))


def canonical_path(path: str, *, cwd: str, home: str, fold_case: bool = False) -> str:
    """The absolute, normalised spelling of `path` as the agent's process would open it from `cwd`.

    `~`, `~/`, `~name`, a leading `$HOME`/`${HOME}` and `$PWD`/`${PWD}` are expanded; relative paths are joined
    to `cwd` (to `/` when `cwd` is unknown or not absolute, so the answer is always absolute); `//`, `/./`, `..`
    and trailing slashes are collapsed; `/proc/self/root/...` becomes the path it aliases. Windows paths (a drive
    letter or UNC prefix, or any path when `cwd` is one) use `/` separators and are case-folded, as NTFS is.
    `fold_case` folds POSIX paths too, for case-insensitive file systems (macOS's default).
    """
    if _WINDOWS_PATH.match(path) or _WINDOWS_PATH.match(cwd):
        return _windows_path(path, cwd, home)
    home = _resolve(home, "/") if home.startswith("/") else "/"
    base = _resolve(cwd, "/") if cwd.startswith("/") else "/"
    result = _resolve(_expand(path, base, home), base)
    return _fold(result) if fold_case else result


def _expand(path: str, cwd: str, home: str) -> str:
    if path == "~" or path.startswith("~/"):
        return home + path[1:]
    if path.startswith("~"):
        name, slash, rest = path[1:].partition("/")
        if name == "+":  # `~+` is $PWD; `~-` ($OLDPWD) is not known here and stays a relative name
            return cwd + slash + rest
        if re.fullmatch(r"[A-Za-z0-9_.][A-Za-z0-9_.\-]*", name):
            return _user_home(name, home) + slash + rest
    if (match := _HOME_VARIABLE.match(path)) is not None:
        return home + path[match.end() :]
    if (match := _PWD_VARIABLE.match(path)) is not None:
        return cwd + path[match.end() :]
    return path


def _user_home(name: str, home: str) -> str:
    parent, own = posixpath.split(home.rstrip("/") or "/")
    if name == own:
        return home
    if name == "root":
        return "/root"
    return posixpath.join(parent or "/", name)


def _resolve(path: str, cwd: str) -> str:
    """Join to `cwd` and collapse `//`, `.` and `..` one name at a time, as the kernel walks a path.

    The walk, not `posixpath.normpath`, so that the magic links are followed where the kernel follows them:
    `/proc/self/cwd/../..` is two levels above the working directory, not `/`.
    """
    names = [] if path.startswith("/") else [name for name in cwd.split("/") if name]
    for name in path.split("/"):
        if name in ("", "."):
            continue
        if name == "..":
            if names:
                names.pop()
            continue
        names.append(name)
        if len(names) == 3 and names[0] == "proc":
            if names[2] == "root" and _PROC_SELF.match(names[1]):
                names = []
            elif names[2] == "cwd" and names[1] in ("self", "thread-self"):
                names = [name for name in cwd.split("/") if name]
    return "/" + "/".join(names)


def _windows_path(path: str, cwd: str, home: str) -> str:
    if _WINDOWS_PATH.match(home) and (path == "~" or path.startswith(("~/", "~\\"))):
        path = home + path[1:]
    joined = path if _WINDOWS_PATH.match(path) or not _WINDOWS_PATH.match(cwd) else ntpath.join(cwd, path)
    normal = ntpath.normpath(joined).replace("\\", "/")
    normal = _WINDOWS_DEVICE_PREFIX.sub("", normal)  # `\\?\C:\x` and `\\.\C:\x` are `C:\x`
    normal = _WINDOWS_UNC_DEVICE.sub("//", normal)  # `\\?\UNC\host\share` is `\\host\share`
    normal = _WINDOWS_ADMIN_SHARE.sub(lambda match: f"{match[1]}:/", normal)  # `\\host\c$\x` is a drive
    head, names = (normal[:3], normal[3:]) if normal[1:3] == ":/" else ("", normal)
    # Win32 drops trailing dots and spaces from each name (`.env.` and `.env ` open `.env`), and the
    # default data stream of a file is the file.
    names = "/".join(name.rstrip(". ") or name for name in _WINDOWS_STREAM.sub("", names).split("/"))
    return _fold(head + names)


def _fold(path: str) -> str:
    """Case-fold as a case-insensitive file system compares names (APFS and NTFS fold, and ignore normalisation)."""
    return unicodedata.normalize("NFC", path.casefold())


SENSITIVE_SUFFIXES = tuple(
    tuple(suffix.split("/"))
    for suffix in (
        ".ssh", ".ssh/id_rsa", ".ssh/id_dsa", ".ssh/id_ecdsa", ".ssh/id_ed25519", ".ssh/id_ecdsa_sk",
        ".ssh/id_ed25519_sk", ".aws", ".aws/credentials", ".aws/config", ".aws/sso", ".gnupg", ".azure", ".kube",
        ".kube/config", ".docker", ".docker/config.json", ".config/gcloud", ".config/gh", ".config/gh/hosts.yml",
        ".cargo/credentials", ".cargo/credentials.toml", ".gem/credentials", ".terraform.d/credentials.tfrc.json",
        ".env", ".envrc", ".env.local", ".env.production", ".env.development", ".env.staging", ".env.test",
        ".netrc", ".git-credentials", ".pgpass", ".npmrc", ".pypirc", ".vault-token",
    )
)  # fmt: skip
"""The default policy's key and credential files, and the directories that hold them, as path suffixes."""
_GLOB = re.compile(r"[*?\[]")


def glob_candidates(path: str, *, dotfiles: bool = False) -> tuple[str, ...]:
    """The key and credential paths a wildcard path could name, so `~/.ss?/id_rsa` meets the rule for its file.

    Without listing directories (no I/O) a pattern cannot be expanded; but the files a policy protects have known
    names, so the path's last components are matched against each of `SENSITIVE_SUFFIXES`, and each suffix that
    fits, through at least one wildcard, replaces them (`~/.aws/cred*` gives `~/.aws/credentials`; `~/.ss*` gives
    `~/.ssh`). `dotfiles`: whether a wildcard at the start of a name matches a leading dot (bash: no; PowerShell's
    providers: yes). A bare `*` is not expanded on its own (`rm -r build/*` and `cat *` are ordinary), only below a
    directory of the suffix (`~/.aws/*` gives `~/.aws/credentials`). Matching ignores case; at most one candidate
    per suffix.
    """
    parts = path.split("/")
    if not any(_GLOB.search(part) for part in parts):
        return ()
    candidates = []
    for suffix in SENSITIVE_SUFFIXES:
        tail = parts[-len(suffix) :]
        if (
            len(tail) == len(suffix)
            and any(_GLOB.search(part) for part in tail)
            and all(
                _name_matches(name, part, dotfiles=dotfiles, bare_star=len(suffix) > 1)
                for name, part in zip(suffix, tail, strict=True)
            )
        ):
            candidates.append("/".join([*parts[: -len(suffix)], *suffix]))
    return tuple(candidates)


def _name_matches(name: str, part: str, *, dotfiles: bool, bare_star: bool) -> bool:
    if not _GLOB.search(part):
        return name == part.lower()
    if part == "*" and not bare_star:
        return False
    if name.startswith(".") and not part.startswith(".") and not dotfiles:
        return False
    return fnmatch.fnmatchcase(name, part.lower())


# ---- hosts ---------------------------------------------------------------------------------------------------------

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):(.*)$", re.DOTALL)
_SPECIAL_SCHEMES = frozenset({"http", "https", "ws", "wss", "ftp", "file"})
"""Schemes the WHATWG URL standard (Node's `fetch`, browsers) parses leniently: `http:/h`, `http:h`, `\\` as `/`."""
_TAB_NEWLINE = str.maketrans({"\t": None, "\n": None, "\r": None})
_FULL_STOPS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})
"""Dots IDNA treats as label separators (ideographic, fullwidth, halfwidth ideographic full stops)."""


def url_host(text: str) -> str | None:
    """The canonical host `text` (a URL, `user@host:port`, or a bare host) would connect to; None if it has none.

    Lowercased and IDNA-mapped (fullwidth digits and dots, soft hyphens), percent-decoded, trailing dots stripped,
    brackets, userinfo and port removed; every numeric IPv4 spelling glibc's `inet_aton`, curl and the WHATWG URL
    parser accept (decimal `2852039166`, hex `0xA9FEA9FE`, octal `0251.0376.0251.0376`, short `169.254.43518`)
    becomes a dotted quad, and IPv4-mapped or -compatible IPv6 becomes the IPv4 address. When real parsers
    disagree on an ambiguous authority, this is the WHATWG reading; `url_hosts` gives every reading.
    """
    hosts = _readings(text)
    return hosts[0] if hosts else None


def url_hosts(text: str) -> frozenset[str]:
    """Every host some real URL parser could read from `text`, canonical as in `url_host`.

    `http://evil.example\\@169.254.169.254/` is `evil.example` to WHATWG (a backslash ends the authority) and
    `169.254.169.254` to curl; `http://a@b@c/` is `c` to WHATWG and urllib but `b@c` splits differently elsewhere.
    A policy that forbids a host should test all of them.
    """
    return frozenset(_readings(text))


def _readings(text: str) -> list[str]:
    # WHATWG drops leading and trailing C0 controls and spaces, and every tab and newline inside
    text = text.strip("".join(map(chr, range(0x21)))).translate(_TAB_NEWLINE)
    match = _SCHEME.match(text)
    special = match is not None and match[1].lower() in _SPECIAL_SCHEMES
    if match and special:
        rest = match[2].lstrip("/\\")  # WHATWG: `http:/h`, `http:h` and `http:\\h` all name host `h`
    elif match and match[2].startswith("//"):
        rest = match[2][2:]
    else:  # `user@host:port`, `host:port/x`, `git@host:repo`, a bare host or IPv6 address
        rest = text[2:] if text.startswith("//") else text
    readings: list[str] = []
    for backslash_ends, at_last in ((special, True), (False, True), (False, False)):
        host = _host_of(_authority(rest, backslash_ends=backslash_ends), at_last=at_last)
        if host is not None and host not in readings:
            readings.append(host)
    return readings


_AUTHORITY = re.compile(r"[^/?#]*")
_AUTHORITY_WHATWG = re.compile(r"[^/?#\\]*")


def _authority(rest: str, *, backslash_ends: bool) -> str:
    match = (_AUTHORITY_WHATWG if backslash_ends else _AUTHORITY).match(rest)
    return match[0] if match else ""


def _host_of(authority: str, *, at_last: bool) -> str | None:
    if "@" in authority:
        authority = authority.rpartition("@")[2] if at_last else authority.partition("@")[2]
    if authority.startswith("["):
        inside, bracket, _ = authority[1:].partition("]")
        return _canonical_ipv6(inside) if bracket else None
    if authority.count(":") >= 2:  # a bare IPv6 address (`fd00:ec2::254`), as ssh and ping accept it
        return _canonical_ipv6(authority)
    return _canonical_name(authority.partition(":")[0])  # a port, or scp's `host:path`


def _canonical_ipv6(text: str) -> str | None:
    address = unquote(text).partition("%")[0]  # drop a zone id, `fe80::1%25eth0`
    try:
        ip = ipaddress.IPv6Address(address)
    except ValueError:
        return None
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    if int(ip) >> 32 == 0 and int(ip) > 1:  # IPv4-compatible `::a.b.c.d` (deprecated, still routed by some stacks)
        return str(ipaddress.IPv4Address(int(ip)))
    return ip.compressed


def _canonical_name(host: str) -> str | None:
    host = unquote(host).translate(_FULL_STOPS)
    labels = [label.lower() if label.isascii() else _nameprep(label) for label in host.rstrip(".").split(".")]
    name = ".".join(labels).rstrip(".")
    if not name:
        return None
    ipv4 = _inet_aton(name)
    return ipv4 if ipv4 is not None else name


def _nameprep(label: str) -> str:
    """IDNA's mapping (RFC 3491): case fold, NFKC, drop soft hyphens and zero-width joiners, as resolvers do."""
    try:
        return idna.nameprep(label)
    except UnicodeError:  # prohibited code points: no resolver accepts them, keep a folded form for logs
        return unicodedata.normalize("NFKC", label).casefold()


def _inet_aton(name: str) -> str | None:
    """The dotted quad glibc's `inet_aton` (and curl, and WHATWG) read from a numeric host, or None if not one."""
    parts = name.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    numbers = []
    for part in parts:
        number = _aton_number(part)
        if number is None:
            return None
        numbers.append(number)
    *leading, last = numbers
    if any(number > 255 for number in leading) or last >= 256 ** (5 - len(numbers)):
        return None
    value = last
    for index, number in enumerate(leading):
        value += number << (8 * (3 - index))
    return str(ipaddress.IPv4Address(value))


def _aton_number(part: str) -> int | None:
    if re.fullmatch(r"0[xX][0-9A-Fa-f]*", part):
        return int(part[2:] or "0", 16)
    if re.fullmatch(r"0[0-7]*", part):
        return int(part, 8)
    if re.fullmatch(r"[1-9][0-9]*", part):
        return int(part)
    return None
