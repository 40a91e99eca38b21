"""keycardctl policy show|validate and explain: what the policy is and why it decides as it does."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from keycardd.adapters import Settings, UnknownAgentError
from keycardd.cli._common import CliError, Subcommands, count_of, print_json
from keycardd.cli._daemon import DaemonUnavailableError, ask_daemon, compile_local
from keycardd.engine import Engine, EntityUid, PolicyError, PolicySource, default_policy_source
from keycardd.explain import explain
from keycardd.identity import resolve_principal_email
from keycardd.policy_store import LocalSources
from keycardd.protocol import ExplainRequest, StatusRequest

MAX_PAYLOAD = 1 << 20


def register(commands: Subcommands) -> None:
    policy = commands.add_parser("policy", help="show or validate Cedar policy")
    actions = policy.add_subparsers(dest="policy_command", metavar="ACTION", required=True)
    show = actions.add_parser("show", help="print the active policy (or FILE)")
    show.add_argument(
        "file",
        nargs="?",
        type=Path,
        help="a Cedar file to print instead of the active policy (default: the active one)",
    )
    show.set_defaults(handler=_show)
    validate = actions.add_parser("validate", help="parse and validate FILE (default: the local policy sources)")
    validate.add_argument(
        "file", nargs="?", type=Path, help="a Cedar file to check (default: the local policy sources keycardd reads)"
    )
    validate.set_defaults(handler=_validate)

    explain_cmd = commands.add_parser("explain", help="explain the decision for a hook payload")
    explain_cmd.add_argument("file", nargs="?", default="-", help="payload file, or - for stdin (default)")
    explain_cmd.add_argument(
        "--agent",
        choices=["claude", "cursor", "codex", "gemini"],
        default="claude",
        help="the agent whose hook sent the payload, which decides how it is read (default claude)",
    )
    explain_cmd.add_argument("--json", action="store_true", help="print the stable JSON document")
    explain_cmd.set_defaults(handler=_explain)


def print_sources(sources: list[str]) -> None:
    """Print each policy source's text (the embedded default by name), as `policy show` and `agent policy` do."""
    for index, name in enumerate(sources):
        if index:
            print()
        if len(sources) > 1:
            print(f"// ---- {name}")
        if name == "embedded:default":
            sys.stdout.write(default_policy_source().text)
            continue
        if name.startswith("zone:"):
            print(f"// (zone policy {name}: see `keycardctl status` for its version)")
            continue
        try:
            sys.stdout.write(Path(name).read_text(encoding="utf-8"))
        except OSError as exc:
            raise CliError(f"cannot read {name}: {exc.strerror}") from None


def active_sources() -> list[str]:
    try:
        return list(ask_daemon(StatusRequest())["policy"]["sources"])
    except DaemonUnavailableError:
        try:
            return [source.name for source in LocalSources.from_environment().read()]
        except PolicyError as exc:
            raise CliError(str(exc)) from None


def _show(args: argparse.Namespace) -> int:
    print_sources([str(args.file)] if args.file else active_sources())
    return 0


def _validate(args: argparse.Namespace) -> int:
    try:
        if args.file:
            sources = [PolicySource(name=str(args.file), text=args.file.read_text(encoding="utf-8"))]
        else:
            sources = LocalSources.from_environment().read()
        engine = Engine.compile(sources)
    except OSError as exc:
        raise CliError(f"cannot read {args.file}: {exc.strerror}") from None
    except PolicyError as exc:
        raise CliError(str(exc)) from None
    names = ", ".join(source.name for source in sources)
    print(f"valid: {count_of(engine.count, 'policy', 'policies')} ({names})")
    return 0


def _read_payload(file: str) -> bytes:
    try:
        data = sys.stdin.buffer.read(MAX_PAYLOAD + 1) if file == "-" else Path(file).read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {file}: {exc.strerror}") from None
    if len(data) > MAX_PAYLOAD:
        raise CliError(f"the payload is larger than {MAX_PAYLOAD} bytes")
    return data


def _explain(args: argparse.Namespace) -> int:
    payload = _read_payload(args.file)
    env = {"cwd": str(Path.cwd())}
    try:
        document = ask_daemon(ExplainRequest(agent=args.agent, payload=payload, env=env))
    except DaemonUnavailableError:
        engine, error, _ = compile_local()
        settings = Settings(principal=EntityUid("User", resolve_principal_email()))
        try:
            document = {**explain(engine, error, settings, agent=args.agent, payload=payload, env=env), "daemon": False}
        except UnknownAgentError as exc:
            raise CliError(str(exc)) from None
    if args.json:
        print_json(document)
        return 0
    where = "by the running daemon" if document["daemon"] else "in-process (no daemon is running)"
    call = " ".join(part for part in (document["agent"], document["event"], document["tool"]) if part)
    print(f"decision: {document['decision'] or 'none (observed event)'}  [{call}, decided {where}]")
    print(f"reason:   {document['reason']}")
    print(f"policies: {', '.join(document['policies']) or '-'}")
    requests = [document["request"]] if "request" in document else document.get("requests", [])
    for request in requests:
        context = request["context"]
        detail = context.get("command") or context.get("file_path") or context.get("url") or ""
        print(f"request:  {request['principal']} {request['action']} {request['resource']} {detail}".rstrip())
    return 0
