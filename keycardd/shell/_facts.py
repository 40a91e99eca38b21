"""Facts about one simple command that policies can match without re-parsing its words.

Spellings are resolved before they reach a policy: `-fdx`, `-xf` and `-d -f` all carry the flag `-f`; `~//`,
`${HOME}/`, `/home/u/.` are one canonical path; `dd`'s last `of=` is the file it writes. What a word cannot tell
(`$X`, a relative path after `cd "$(...)"`) is an unknown, never a guess.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from keycardd.canonical import canonical_path, glob_candidates, url_hosts
from keycardd.shell._words import Word

_SPACE = re.compile(r"\s")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_SCP_TARGET = re.compile(r"^[^/:]+@[^/:]+:")
_FILE_NAME = re.compile(r"^[^/=:]*\.[A-Za-z0-9_-]+$")
_DELETES = frozenset({"rm", "rmdir", "unlink", "shred", "srm", "trash", "trash-put", "gio"})
_READS = frozenset({"cat", "tac", "head", "tail", "less", "more", "most", "bat", "batcat", "nl", "strings", "xxd",
                    "hexdump", "od", "base64", "base32", "grep", "egrep", "fgrep", "rg", "ag", "ack", "awk", "gawk",
                    "jq", "yq", "diff", "cmp", "wc", "sort", "uniq", "cut", "file", "stat", "md5sum", "sha1sum",
                    "sha256sum", "sha512sum", "cksum", "openssl", "gpg", "source", ".", "view", "zcat", "bzcat",
                    "xzcat", "zless", "column", "paste", "join", "comm", "fold", "fmt", "pr", "tr", "iconv",
                    "scp", "rsync", "curl"})  # fmt: skip
_WRITES = frozenset({"tee", "touch", "truncate", "mkdir", "chmod", "chown", "chgrp", "chattr", "setfacl", "mkfifo",
                     "mknod", "tar", "unzip", "patch"})  # fmt: skip
_COPIES = frozenset({"cp", "install", "ln", "rsync", "scp"})
"""The last operand is written; the others are read (mv's sources are removed, so they count as deleted)."""
_NETWORK = frozenset({"curl", "wget", "nc", "ncat", "netcat", "socat", "telnet", "ssh", "scp", "sftp", "ftp", "http",
                      "https", "xh", "aria2c", "httpie", "lynx", "links", "w3m", "openssl", "git", "ping",
                      "dig", "nslookup", "host"})  # fmt: skip
_RUNS_SCRIPT = re.compile(
    r"^(?:\.|source|(?:ba|da|z|k|mk|a|tc|c|fi|ya|po|rba)?sh|python|pypy|perl|ruby|node|php|lua|Rscript|tclsh|deno|bun)"
    r"(?:-?\d+(?:\.\d+)*[a-z]?)?$"
)
"""Programs whose first operand is a script they run (so the operand's access is "exec")."""
_OUTPUT_OPTIONS = {"curl": ("-o", "--output"), "wget": ("-O", "--output-document"), "sort": ("-o", "--output"),
                   "cc": ("-o",), "gcc": ("-o",), "clang": ("-o",), "go": ("-o",), "install": ("-t",),
                   "cp": ("-t", "--target-directory"), "mv": ("-t", "--target-directory"),
                   "ln": ("-t", "--target-directory"), "openssl": ("-out",), "gpg": ("-o", "--output"),
                   "iconv": ("-o", "--output"), "find": ("-fprint", "-fprint0", "-fprintf", "-fls")}  # fmt: skip
"""Options whose value is a file the program writes (`curl -o x.sh URL`)."""
_IN_PLACE_FLAGS = {"yq": frozenset({"-i", "--inplace"})}
"""Readers that rewrite their operands with these flags (`yq -i '.hooks = {}' settings.json`)."""
_GIT_WORK_TREE_WRITERS = frozenset({"apply", "am", "checkout", "switch", "restore", "reset", "merge", "pull", "rebase",
                                    "cherry-pick", "revert", "stash", "init", "mv", "rm", "clean"})  # fmt: skip
"""git commands that change files of the work tree (which ones, the repository's content decides)."""
_GIT_APPLY_CHECKS_ONLY = frozenset({"--check", "--stat", "--numstat", "--summary"})
_DYNAMIC_PART = re.compile(r"\$\{[^{}]*\}|\$\([^()]*\)|`[^`]*`|\$(?:[A-Za-z_][A-Za-z0-9_]*|[0-9@*#?$!-])")
"""What a word only known at run time holds in place of text: an expansion or a substitution (without nesting)."""
_MATCHES_ANY_NAME = re.compile(r"\.?(?:[*?]|\[[^\]]*\])*\*(?:[*?]|\[[^\]]*\])*")
"""A pattern component every name (or every dotted name) matches: only wildcards and brackets, a `*` among them."""
_EDITS_IN_PLACE = re.compile(r"^(?:g?sed|perl|ruby)(?:-?\d+(?:\.\d+)*)?$")
"""`sed -i`, `perl -pi -e`, `ruby -i -pe`: the operands are rewritten (a write)."""
_GIT_GLOBAL_WITH_VALUE = frozenset({"-C", "-c", "--git-dir", "--work-tree", "--namespace", "--config-env"})


@dataclass(slots=True)
class Facts:
    flags: list[str] = field(default_factory=list)
    accesses: list[tuple[str, str]] = field(default_factory=list)
    hosts: set[str] = field(default_factory=set)
    unknowns: set[str] = field(default_factory=set)
    subcommand: str | None = None
    deletes_recursively: bool = False


def command_facts(
    program: str, args: Sequence[Word], *, cwd: str | None, home: str | None, fold_case: bool, dotglob: bool = False
) -> Facts:
    """Flags, canonical path accesses, hosts and unknowns of `program args...` (`dotglob`: `*` matches `.aws`)."""
    facts = Facts()
    operands, outputs = _split(program, args, facts)
    facts.subcommand = _subcommand(program, args)
    access = _access(program, facts)
    last = len(operands) - 1
    for index, word in enumerate(operands):
        text = word.text
        if _URL.match(text) or _SCP_TARGET.match(text):
            continue
        kind = access
        if index == 0 and _RUNS_SCRIPT.match(program) and not {"-c", "-e", "-E", "-m", "-r", "-p"} & set(facts.flags):
            kind = "exec"  # `bash x.sh`, `. ./env.sh`, `python3 tool.py`: the file's code runs (not seen)
        elif program == "dd":
            kind = "write" if text.startswith("of=") else "read" if text.startswith("if=") else "use"
            text = text.partition("=")[2] if "=" in text else text
        elif program in _COPIES and index == last and last > 0:
            kind = "delete" if facts.deletes_recursively else "write"  # rsync --delete empties its target
        elif program == "mv":
            kind = "write" if index == last and last > 0 else "delete"
        elif "=" in text and not text.startswith(("/", "~", ".")):
            text = text.partition("=")[2]  # key=value: the value may be a path
        if text.startswith(("@", "<")) and len(text) > 1:
            text, kind = text[1:], "read"  # `curl -d @.env`, `curl -F f=@key.pem`, `-F f=<file`: the file is sent
        elif program == "curl" and "@" in text and not _URL.match(text):
            text, kind = text.partition("@")[2], "read"  # `--data-urlencode name@.env` sends the file
        if not _path_like(text, program, kind):
            continue
        if word.quoted_tilde and text == word.text:
            text = f"./{text}"  # `rm -rf '~'`: a file named ~ in the working directory, not the home
        path = _canonical(text, cwd=cwd, home=home, fold_case=fold_case, facts=facts)
        if path is None:
            continue
        if word.glob and kind == "delete" and facts.deletes_recursively:
            facts.accesses.append((_glob_base(path), "delete"))
        facts.accesses.append((path, kind))
        if word.glob:  # `cat ~/.ss?/id_rsa`: the protected files the pattern could name, without listing directories
            facts.accesses.extend((candidate, kind) for candidate in glob_candidates(path, dotfiles=dotglob))
    for word in outputs:
        path = _canonical(word.text, cwd=cwd, home=home, fold_case=fold_case, facts=facts)
        if path is not None:
            facts.accesses.append((path, "write"))
    if program == "dd":  # only the last of= counts: dd of=/dev/null of=/dev/sda writes /dev/sda
        writes = [index for index, (_, kind) in enumerate(facts.accesses) if kind == "write"]
        for index in writes[:-1]:
            facts.accesses[index] = (facts.accesses[index][0], "use")
    _directories(program, args, operands, facts, cwd=cwd, home=home, fold_case=fold_case)
    return facts


def _directories(
    program: str,
    args: Sequence[Word],
    operands: list[Word],
    facts: Facts,
    *,
    cwd: str | None,
    home: str | None,
    fold_case: bool,
) -> None:
    """The directories a command works on that no operand names: where find starts, where git clone writes, where
    an archive or a patch is unpacked."""
    if program == "find":
        _find_starts(args, facts, cwd=cwd, home=home, fold_case=fold_case)
    if program == "git" and facts.subcommand == "clone":
        _clone_target(operands, facts, cwd=cwd, home=home, fold_case=fold_case)
    directory = _writes_where_it_works(program, args, facts)
    written = _canonical(directory, cwd=cwd, home=home, fold_case=fold_case, facts=facts) if directory else None
    if written is not None:
        facts.accesses.append((written, "write"))


def _writes_where_it_works(program: str, args: Sequence[Word], facts: Facts) -> str | None:
    """The directory a program writes files into whose names only its input knows: an archive extracted (`tar x`,
    `unzip`, `cpio -i`), a patch applied, a git command that changes the work tree. Those files are not known, so
    the directory itself counts as written: `cd ~/.claude && patch -p0 < p` changes what the guard protects, and
    `cd ~ && tar xf dotfiles.tar` may replace anything in the home. An explicit target (`tar -C DIR`, `unzip -d
    DIR`, `patch -d DIR`) is already an operand these programs write."""
    flags = set(facts.flags)
    if program in ("tar", "bsdtar"):
        old_style = bool(args) and args[0].text.isalpha() and "x" in args[0].text  # `tar xzf a.tgz`
        extracts = old_style or bool(flags & {"-x", "--extract", "--get"})
        return "." if extracts and not flags & {"-C", "--directory", "-t", "--list"} else None
    if program == "unzip":
        return "." if not flags & {"-d", "-l", "-t", "-p", "-v", "-Z", "-z"} else None
    if program == "cpio":
        return "." if flags & {"-i", "--extract"} and not flags & {"-D", "--directory", "-t", "--list"} else None
    if program == "patch":
        return "." if not flags & {"-d", "--directory", "--dry-run"} else None
    if program != "git" or facts.subcommand not in _GIT_WORK_TREE_WRITERS:
        return None
    if facts.subcommand == "apply" and flags & _GIT_APPLY_CHECKS_ONLY and "--apply" not in flags:
        return None
    return _git_work_tree(args)


def _git_work_tree(args: Sequence[Word]) -> str:
    """Where git works: `.`, moved by each `-C DIR` in turn (`git -C a -C b` is `a/b`) and by `--work-tree DIR`."""
    directory = "."
    index = 0
    while index < len(args):
        name, equals, value = args[index].text.partition("=")
        if name in _GIT_GLOBAL_WITH_VALUE:
            if not equals:
                index += 1
                value = args[index].text if index < len(args) else ""
            if name in ("-C", "--work-tree") and value:
                directory = value if value.startswith(("/", "~")) else posixpath.join(directory, value)
        elif not name.startswith("-"):
            break  # the subcommand
        index += 1
    return directory


def _clone_target(operands: list[Word], facts: Facts, *, cwd: str | None, home: str | None, fold_case: bool) -> None:
    """`git clone SOURCE [DIR]` writes DIR, or the source's last name (`https://x/.claude.git` makes `./.claude`)."""
    texts = [word.text for word in operands]
    after = texts[texts.index("clone") + 1 :] if "clone" in texts else []
    if not after:
        return
    target = after[-1]
    if len(after) == 1:
        name = re.split(r"[/:]", target.rstrip("/"))[-1]
        target = name.removesuffix(".git") or name
    path = _canonical(target, cwd=cwd, home=home, fold_case=fold_case, facts=facts)
    if path is not None:
        facts.accesses.append((path, "write"))


def _split(program: str, args: Sequence[Word], facts: Facts) -> tuple[list[Word], list[Word]]:
    """Options into `facts.flags`; returns the operands (and `key=value` values) and the files output options name."""
    operands: list[Word] = []
    outputs: list[Word] = []
    output_options = _OUTPUT_OPTIONS.get(program, ())
    options_done = False
    for position, word in enumerate(args):
        if word.dynamic:
            facts.unknowns.add("args")
            pattern = _DYNAMIC_PART.sub("*", word.text)
            if "/" in pattern and "$" not in pattern and "`" not in pattern:
                operands.append(Word(pattern, glob=True))  # `~/.ssh/$k` may be any file in ~/.ssh: a pattern
            continue
        text = word.text
        if output_options and position and _takes_output(args[position - 1].text, output_options):
            outputs.append(word)
            continue
        if not options_done and text == "--":
            options_done = True
        elif not options_done and len(text) > 1 and text.startswith("-"):
            _flags(text, facts.flags)
            name, equals, value = text.partition("=")
            if equals and value:
                (outputs if name in output_options else operands).append(Word(value, glob=word.glob))
        else:
            operands.append(word)
        if (program in _NETWORK or _URL.match(text) or text.startswith("//")) and len(text) < 2048:
            facts.hosts.update(url_hosts(text))
    return operands, outputs


def _takes_output(previous: str, output_options: tuple[str, ...]) -> bool:
    """`-o FILE`, `--output FILE`, and a cluster ending in the option: `curl -sSfo FILE`."""
    if previous in output_options:
        return True
    short = [option[1] for option in output_options if len(option) == 2]
    return (
        previous.startswith("-") and not previous.startswith("--") and previous[1:].isalpha() and previous[-1] in short
    )


def _flags(text: str, flags: list[str]) -> None:
    """`--force=x` is `--force`; `-fdx` is itself and `-f`, `-d`, `-x` (getopt's clusters)."""
    if text.startswith("--"):
        flags.append(text.partition("=")[0])
        return
    flags.append(text.partition("=")[0])
    if text[1:].isalpha() and len(text) > 2:
        flags.extend(f"-{letter}" for letter in text[1:])


def _access(program: str, facts: Facts) -> str:
    flags = set(facts.flags)
    if program in _DELETES:
        facts.deletes_recursively = bool(flags & {"-r", "-R", "--recursive"}) or program == "gio"
        return "delete"
    if program == "rsync" and any(flag.startswith("--delete") or flag == "--remove-source-files" for flag in flags):
        facts.deletes_recursively = True
    if _EDITS_IN_PLACE.match(program) and ("--in-place" in flags or any(f.startswith("-i") for f in flags)):
        return "write"
    if flags & _IN_PLACE_FLAGS.get(program, frozenset()):
        return "write"
    if program in _READS:
        return "read"
    if program in _WRITES:
        return "write"
    return "use"


def _path_like(text: str, program: str, kind: str) -> bool:
    if not text or "\n" in text or len(text) > 4096:
        return False
    if kind in ("use", "exec") and _SPACE.search(text):
        return False  # text, not a file name (`echo 'a b/c'`)
    if text.startswith(("/", "~", ".")) or "/" in text:
        return True
    return kind in ("delete", "read", "write") or bool(_FILE_NAME.match(text))


def _canonical(text: str, *, cwd: str | None, home: str | None, fold_case: bool, facts: Facts) -> str | None:
    if text.startswith("~") and home is None:
        facts.unknowns.add("args")
        return None
    absolute = text.startswith(("/", "~"))
    if not absolute and cwd is None:
        facts.unknowns.add("cwd")
        return None
    return canonical_path(text, cwd=cwd or "/", home=home or "/", fold_case=fold_case)


def _glob_base(path: str) -> str:
    """The deepest directory of a glob with no pattern in it: `rm -rf ~/*` empties the home directory.

    Only where the pattern can match every name there (`*`, `.*`, `?*`, `[a-z]*`); `rm -rf build/*.egg-info`
    removes some entries of build/, not build/ itself, and stays the path it is."""
    parts = path.split("/")
    for index, part in enumerate(parts):
        if re.search(r"[*?\[]", part):
            if not _MATCHES_ANY_NAME.fullmatch(part):
                return path
            return "/".join(parts[:index]) or "/"
    return path


def _find_starts(args: Sequence[Word], facts: Facts, *, cwd: str | None, home: str | None, fold_case: bool) -> None:
    """find's start points (before the first test): deleted when it runs -delete or -exec rm."""
    texts = [word.text for word in args]
    deleting = "-delete" in texts or any(
        texts[index] in ("-exec", "-execdir", "-ok", "-okdir")
        and index + 1 < len(texts)
        and texts[index + 1].rsplit("/", 1)[-1] in _DELETES | {"mv"}
        for index in range(len(texts))
    )
    if not deleting:
        return
    facts.deletes_recursively = True
    facts.accesses = [(path, kind) for path, kind in facts.accesses if kind != "use"]
    starts = []
    words = list(args)
    while words and (words[0].text in ("-H", "-L", "-P") or words[0].text.startswith(("-D", "-O"))):
        words = words[2:] if words[0].text in ("-D", "-O") else words[1:]  # find's own options come first
    for word in words:
        if word.text.startswith(("-", "(", "!")) and not word.dynamic:
            break
        starts.append(word)
    if not starts:
        starts = [Word(".")]
    for word in starts:
        if word.dynamic:
            facts.unknowns.add("args")
            continue
        path = _canonical(word.text, cwd=cwd, home=home, fold_case=fold_case, facts=facts)
        if path is not None:
            facts.accesses.append((_glob_base(path) if word.glob else path, "delete"))


def _subcommand(program: str, args: Sequence[Word]) -> str | None:
    """The first operand (git's after its global options): `push` in `git -C repo push`, `release` in `gh release`."""
    index = 0
    while index < len(args):
        word = args[index]
        if word.dynamic:
            return None
        if program == "git" and word.text in _GIT_GLOBAL_WITH_VALUE:
            index += 2
            continue
        if not word.text.startswith("-"):
            return word.text
        index += 1
    return None
