"""Canonical facts for policies: the paths file tools touch and the hosts URLs name, one spelling each.

The adapters copy what the agent sent (`file_path`, `path`, `url`, an MCP tool's arguments); this step, run once
per gated call with the daemon's settings, rewrites it into the facts the default policy matches: a canonical
absolute `file_path` (case-folded where the file system ignores case) and a canonical `host`. A call that names
several paths or hosts becomes several requests (`Call.more_facts`), because a Cedar `like` cannot look inside a
set: `context.file_path like "*/.ssh/id_*"` must see every path on its own.

MCP arguments are searched by a fixed rule, first match wins: a `file://` URL, or a string that is an absolute path
or starts with `~`, is a path under any key; a string with a scheme (`https://...`) names a host; any other string
under a key that names a host (`url`, `uri`, `endpoint`, `host`, ...) names a host, and under a key that names a
path (`path`, `file_path`, `filename`, `directory`, `paths`, `source`, `destination`, ... see `_PATH_KEY`) is a
path whatever it looks like (a relative name, joined to the cwd).
Nested objects and lists (and JSON carried in a string) are searched to a fixed depth; an argument tree too large
to search is malformed. Grep's `glob` is joined to its `path`: the files it reads.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from keycardd.adapters.decision import Call, Kind, Settings
from keycardd.canonical import canonical_path, glob_candidates, url_host, url_hosts

_PATH_KEY = re.compile(
    r"(?:^|_|-)(?:path|paths|file|files|filename|filenames|filepath|dir|dirs|directory|directories|folder|root"
    r"|cwd|source|destination|target|src|dst|dest)$|^(?:[a-z]+)(?:Path|Paths|File|Files|Dir|Directory|Folder)$",
    re.IGNORECASE,
)
_HOST_KEY = re.compile(r"(?:^|_|-)(?:url|urls|uri|uris|endpoint|host|hostname|href|link)$", re.IGNORECASE)
_ABSOLUTE = re.compile(r"^(?:/|~|[A-Za-z]:[\\/]|\\\\)")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
MAX_PATH = 4096
"""Linux's PATH_MAX: a longer string is text that happens to start with `/`, not a path."""
MAX_DEPTH = 8
MAX_VALUES = 1024
"""An argument tree with more strings than this (or nested deeper) is not searched but refused: it cannot be
checked within the hook's budget, and a guard does not wave through what it did not read."""


class ArgumentsTooLargeError(ValueError):
    """The MCP arguments are too large or too deep to search for paths."""


def with_facts(call: Call, settings: Settings) -> Call:
    """`call` with canonical paths and hosts; shell lines are left to the shell analysis, which does the same."""
    if call.parts:  # apply_patch's files, read_many_files' paths: each part is decided on its own facts
        return dataclasses.replace(call, parts=tuple(with_facts(part, settings) for part in call.parts))
    if call.kind is not Kind.GATE or call.malformed is not None or call.shell_line is not None:
        return call
    context = dict(call.context)
    cwd = str(context.get("cwd") or "")

    spellings: dict[str, str] = {}  # a path the arguments repeat (MCP's `path`, also copied to the context) once

    def canonical(path: str) -> str:
        found = spellings.get(path)
        if found is None:
            found = spellings[path] = canonical_path(path, cwd=cwd, home=settings.home, fold_case=settings.fold_case)
        return found

    paths: list[str] = []
    hosts: list[str] = []
    for key in ("file_path", "path"):
        value = context.get(key)
        if isinstance(value, str):
            context[key] = canonical(value)
            paths.append(context[key])
            paths.extend(glob_candidates(context[key], dotfiles=True))  # read_many_files' `~/.aws/*`
    url = context.get("url")
    if isinstance(url, str) and url[:7].lower() == "file://":
        paths.append(canonical(unquote(urlsplit(url).path) or "/"))  # WebFetch of file:///home/u/.ssh/id_rsa
    elif isinstance(url, str):
        hosts.extend(_hosts_of(url))
    if call.tool == "grep" and call.arguments is not None:
        paths += [canonical(path) for path in _grep_files(call.arguments, context)]
    elif call.arguments is not None:
        try:
            for kind, value in _search(call.arguments):
                if kind == "path":
                    paths.append(canonical(value))
                else:
                    hosts.extend(_hosts_of(value))
        except ArgumentsTooLargeError as exc:
            return dataclasses.replace(call, malformed=str(exc))
    paths = list(dict.fromkeys(paths))
    hosts = list(dict.fromkeys(hosts))
    if paths and "file_path" not in context:
        context["file_path"] = paths[0]
    if hosts:
        context["host"] = hosts[0]
    context["home"] = settings.canonical_home
    more = [{"file_path": path} for path in paths if path != context.get("file_path")]
    more += [{"host": host} for host in hosts[1:]]
    return dataclasses.replace(call, context=context, more_facts=tuple(more))


def _grep_files(arguments: Mapping[str, Any], context: Mapping[str, Any]) -> list[str]:
    """Grep's `glob` names the files it reads under its `path`: `{"path": "~", "glob": "**/credentials"}` reads
    `~/.aws/credentials`, so the pattern and the credential files it could match are paths of the call too."""
    pattern = arguments.get("glob")
    if not isinstance(pattern, str) or not pattern or "\n" in pattern:
        return []
    root = context.get("path") or context.get("cwd") or "."
    combined = f"{str(root).rstrip('/')}/{pattern}"
    return [combined, *glob_candidates(combined, dotfiles=True)]


def _hosts_of(url: str) -> list[str]:
    primary = url_host(url)
    others = sorted(url_hosts(url) - {primary}) if primary is not None else sorted(url_hosts(url))
    return ([primary] if primary is not None else []) + others


def _search(arguments: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """("path" | "host", text) for every string in the argument tree the module docstring's rule selects."""
    budget = [MAX_VALUES]

    def visit(value: object, key: str, depth: int) -> Iterator[tuple[str, str]]:
        if depth > MAX_DEPTH:
            raise ArgumentsTooLargeError(f"the tool's arguments nest deeper than {MAX_DEPTH} levels")
        budget[0] -= 1
        if budget[0] < 0:
            raise ArgumentsTooLargeError(f"the tool's arguments hold more than {MAX_VALUES} values")
        if isinstance(value, Mapping):
            for child_key, child in value.items():
                yield from visit(child, str(child_key), depth + 1)
        elif isinstance(value, list):
            for child in value:
                yield from visit(child, key, depth + 1)
        elif isinstance(value, str) and value[:1] in ("{", "[") and (nested := _json(value)) is not None:
            yield from visit(nested, key, depth + 1)  # JSON carried in a string is searched like the rest
        elif isinstance(value, str) and value:
            yield from _classify(value, key)

    yield from visit(arguments, "", 0)


def _json(text: str) -> object | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, (dict, list)) else None


def _classify(value: str, key: str) -> Iterator[tuple[str, str]]:
    if "\n" in value:  # text, not a name: code, a message, a document
        return
    if value[:7].lower() == "file://":
        yield "path", unquote(urlsplit(value).path) or "/"
    elif _URL.match(value):
        yield "host", value
    elif _ABSOLUTE.match(value) and len(value) <= MAX_PATH:  # `{"uri": "~/.ssh/id_rsa"}` is a path
        yield "path", value
    elif _HOST_KEY.search(key):
        yield "host", value
    elif _PATH_KEY.search(key):
        yield "path", value
