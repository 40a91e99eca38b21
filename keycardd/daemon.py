"""`keycardd`: the long-running daemon. Wires the policy store, the adapters, the decision log and the socket
server into one anyio task group, so that shutdown is a single cancel and no background job outlives it."""

from __future__ import annotations

import argparse
import functools
import importlib.util
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
from anyio.abc import SocketListener, TaskStatus

from keycardd import __version__, canary, paths, process_privacy, systemd
from keycardd.adapters import Decider, HookAnswer, Settings, UnknownAgentError
from keycardd.balance import ConnectionBalance
from keycardd.canary import CanaryTokens
from keycardd.config import ConfigError, load_config
from keycardd.credentials.errors import CredentialDeniedError, NotSignedInError, OAuthError, failure_document
from keycardd.decision_log import DecisionLog
from keycardd.engine import EntityUid, Outcome
from keycardd.explain import explain
from keycardd.guard import Guard
from keycardd.http_server import DEFAULT_HOST, DEFAULT_PORT, HttpHookServer, HttpOptions, open_listener, parse_port
from keycardd.identity import resolve_principal_email
from keycardd.policy_store import LocalSources, PolicyStore
from keycardd.protocol import (
    CanaryRequest,
    CredentialRequest,
    DocumentReply,
    ErrorReply,
    ExplainRequest,
    HookRequest,
    HookResult,
    ReloadRequest,
    ReplicaReport,
    Reply,
    Request,
    StatusRequest,
)
from keycardd.replicas import Replicas
from keycardd.server import AlreadyRunningError, SocketServer, bind_socket, raise_fd_limit
from keycardd.shadow import ShadowEvaluator
from keycardd.stats import DecisionStats
from keycardd.telemetry import service as telemetry_service
from keycardd.zone.errors import ZoneError

if TYPE_CHECKING:
    from keycardd.credentials.broker import CredentialBroker
    from keycardd.replica import PrimaryLink
    from keycardd.zone.sync import ZoneSync

log = logging.getLogger("keycardd")
SOCKET_CHECK_S = 1.0
EX_TEMPFAIL = 75
MAX_PROCESSES = 64
LARGE_HOOK_PAYLOAD = 16 * 1024
"""Hook payloads larger than this (a shell line of many KiB: up to ~300 ms of CPU) are decided in a worker thread,
one at a time, so ordinary calls are answered meanwhile: the Python analysis gives up the GIL every 5 ms (the parser
and Cedar keep it for their one call, tens of ms at 64 KiB). Smaller payloads are decided inline, where a thread
hop would cost more than the decision."""


class Daemon:
    """The request handler and the state behind `status`."""

    def __init__(
        self,
        socket_path: Path,
        store: PolicyStore,
        settings: Settings,
        decision_log: DecisionLog,
        *,
        zone: ZoneSync | None = None,
        broker: CredentialBroker | None = None,
        primary: PrimaryLink | None = None,
        telemetry: telemetry_service.TelemetryService | None = None,
    ) -> None:
        self.socket_path = socket_path
        self.store = store
        self.zone = zone
        self.broker = broker
        self.primary = primary
        """Set in a replica process: what it does not own (status, reload, credentials) is asked of the primary."""
        self.replicas: Replicas | None = None
        """Set in a primary started with `--processes N` (N > 1)."""
        self.decider = Decider(settings)
        self._large_hooks: anyio.CapacityLimiter | None = None
        """One worker thread for payloads over LARGE_HOOK_PAYLOAD (created in the event loop, on first use)."""
        self.decision_log = decision_log
        self.stats = DecisionStats()
        self.canaries = CanaryTokens()
        self.shadow = ShadowEvaluator(store, settings)
        self.telemetry = telemetry
        """Set when OTLP export is configured (in the primary, which exports its replicas' records too)."""
        if telemetry is not None:
            telemetry.attach(decision_log, self.shadow, zone)
        self.started = time.monotonic()
        self.server = SocketServer(self.handle)
        self.http: HttpHookServer | None = None
        """Set when keycardd also serves Claude Code's http hooks on loopback (`--http`)."""
        self.exit_code = 0

    async def handle(self, request: Request) -> Reply:
        if isinstance(request, HookRequest):
            if canary.ENV in request.env and self.primary is not None:
                return await self.primary.forward(request)  # only the primary knows doctor's canary tokens
            return await self._hook(request)
        if isinstance(request, ExplainRequest):
            return self._explain(request)
        if self.primary is not None:
            return await self.primary.forward(request)
        if isinstance(request, StatusRequest):
            return DocumentReply(body=self.status())
        if isinstance(request, CanaryRequest):
            return DocumentReply(body={"token": self.canaries.issue(), "expires_in_s": canary.LIFETIME_S})
        if isinstance(request, ReloadRequest):
            reloaded = await self.reload_policy()
            if self.zone is not None:
                try:
                    await self.zone.sync_now()  # new zone policy reaches replicas through `zone.on_change`
                except ZoneError:
                    reloaded = False
            return DocumentReply(body={"reloaded": reloaded, "policy": self.store.status(), **self._zone_status()})
        if isinstance(request, CredentialRequest):
            return await self._credential(request)
        return ErrorReply(message=f"unsupported request {type(request).__name__}")

    async def handle_replica(self, request: Request) -> Reply:
        """Requests on a replica's private channel: its reports, and what it forwards."""
        if not isinstance(request, ReplicaReport):
            return await self.handle(request)
        self.stats.merge(request.decisions, request.latencies_us)
        self.shadow.merge(request.shadow)
        self.server.connections += request.served
        self.server.refused += request.refused
        self.decision_log.dropped += request.log_dropped
        if self.http is not None:
            self.http.add(request.http)
        if request.log_lines:
            await self.decision_log.append_encoded(request.log_lines, request.log_records)
        return DocumentReply(body={})

    async def reload_policy(self) -> bool:
        """Re-read the local policy sources (SIGHUP, `reload`, a replica's start). A replica also re-reads the zone
        policy its primary verified and cached; a primary passes the reload on to its replicas."""
        reloaded = await self.store.reload()
        if self.primary is not None and self.zone is not None:
            await self.zone.load_cache()
        if self.replicas is not None:
            self.replicas.signal(signal.SIGHUP)
        return reloaded

    def stop_for_restart(self, reason: str) -> None:
        """Stop with EX_TEMPFAIL: the service manager (or the next hook's autostart) starts a fresh daemon."""
        log.error("%s", reason)
        self.exit_code = EX_TEMPFAIL
        self.server.shutdown()

    async def _hook(self, request: HookRequest) -> Reply:
        started = time.perf_counter()
        is_canary = False
        if canary.ENV in request.env:  # doctor's: the token leaves the request before anything decides on it
            env = dict(request.env)
            is_canary = self.canaries.valid(env.pop(canary.ENV)) and canary.is_canary_payload(request.payload)
            request = HookRequest(agent=request.agent, payload=request.payload, env=env)
        store = self.store
        decide = functools.partial(
            self.decider.decide_hook, store.engine, store.error, request.agent, request.payload, request.env
        )
        try:
            if len(request.payload) <= LARGE_HOOK_PAYLOAD:
                answer = decide()
            else:  # a long shell line: decided off the event loop, so other agents' calls are answered meanwhile
                if self._large_hooks is None:
                    self._large_hooks = anyio.CapacityLimiter(1)
                answer = await anyio.to_thread.run_sync(decide, limiter=self._large_hooks)
        except UnknownAgentError as exc:
            return ErrorReply(message=str(exc))
        latency_us = (time.perf_counter() - started) * 1e6
        self._observe(answer, latency_us, request.payload, is_canary)
        return HookResult(stdout=answer.stdout, exit_code=answer.exit_code)

    def _observe(self, answer: HookAnswer, latency_us: float, payload: bytes, is_canary: bool = False) -> None:
        """Everything that happens after the decision: counted here, logged (and exported) and shadowed by
        background tasks. A doctor canary is logged as one and neither counted nor shadowed (keycardd/canary.py)."""
        if answer.decision is not None and not answer.repeated and not is_canary:
            self.stats.record(answer.decision.outcome, latency_us, answer.call.agent)
            self.shadow.submit(answer)
        self.decision_log.submit(answer, latency_us, payload, self.store.engine, canary=is_canary)

    def _explain(self, request: ExplainRequest) -> Reply:
        try:
            document = explain(
                self.store.engine,
                self.store.error,
                self.decider.settings,
                agent=request.agent,
                payload=request.payload,
                env=request.env,
            )
        except UnknownAgentError as exc:
            return ErrorReply(message=str(exc))
        return DocumentReply(body={**document, "daemon": True})

    def status(self) -> dict[str, object]:
        """The `keycardctl status --json` document; its keys are documented and stable."""
        return {
            "version": __version__,
            "pid": os.getpid(),
            "uptime_s": round(time.monotonic() - self.started, 1),
            "socket": str(self.socket_path),
            "principal": str(self.decider.settings.principal),
            "policy": self.store.status(),
            "guard": self.decider.settings.guard.status(),
            "decisions": dict(self.stats.counts),
            "decisions_by_agent": {agent: dict(counts) for agent, counts in sorted(self.stats.by_agent.items())},
            "latency_us": self.stats.latency(),
            "log": {
                "path": str(self.decision_log.path),
                "dropped": self.decision_log.dropped,
                **self.decision_log.chain_status(),
            },
            "shadow": self.shadow.status(),
            "telemetry": self.telemetry.status() if self.telemetry else telemetry_service.disabled_status(),
            "connections": {"served": self.server.connections, "refused": self.server.refused},
            "processes": 1 + (self.replicas.count if self.replicas is not None else 0),
            **({"http": self.http.status()} if self.http is not None else {}),
            **self._zone_status(),
        }

    async def _credential(self, request: CredentialRequest) -> Reply:
        if self.broker is None:
            return ErrorReply(message="no Keycard zone is configured, so keycardd has no credentials to issue")
        try:
            issued = await self.broker.issue(request.resource, request.scopes, request.session_id)
        except (CredentialDeniedError, NotSignedInError, OAuthError) as exc:
            log.warning("credential for %s not issued: %s", request.resource, exc)
            return DocumentReply(body={"error": failure_document(exc)})
        return DocumentReply(body={"token": issued.token, "expires_at": issued.expires_at})

    def _zone_status(self) -> dict[str, object]:
        sections: dict[str, object] = {}
        if self.zone is not None:
            sections["zone"] = self.zone.status()
        if self.broker is not None:
            sections["credentials"] = self.broker.status()
        return sections

    async def run(
        self, listener: SocketListener, own_inode: int | None = None, http_listener: SocketListener | None = None
    ) -> None:
        """Serve until SIGTERM/SIGINT. Signal handlers are installed before the first connection is accepted."""
        async with anyio.create_task_group() as tasks:
            await tasks.start(self._signals)
            tasks.start_soon(self.decision_log.run)
            tasks.start_soon(self.store.watch)
            tasks.start_soon(self.shadow.run)
            if self.telemetry is not None:
                tasks.start_soon(self.telemetry.run)
            if self.http is not None and http_listener is not None:
                tasks.start_soon(self.http.serve, http_listener)
            if self.primary is not None:  # a replica: the primary syncs the zone, brokers and owns the socket file
                tasks.start_soon(self.primary.report_until_gone, self)
            else:
                if self.zone is not None:
                    tasks.start_soon(self.zone.run)
                if self.broker is not None:
                    tasks.start_soon(self.broker.run)
                if self.replicas is not None:
                    await tasks.start(self.replicas.run)
                if own_inode is not None:
                    tasks.start_soon(self._guard_socket, own_inode)
                systemd.notify(f"READY=1\nSTATUS=deciding with {self.store.status()['count']} policies")
            await self.server.serve(listener)
            if self.http is not None:
                self.http.shutdown()
                await self.http.stopped.wait()
            if self.replicas is not None:
                await self.replicas.stop()
            if self.primary is not None:
                await self.primary.flush(self)
            tasks.cancel_scope.cancel()

    async def _guard_socket(self, inode: int) -> None:
        """Exit when our socket file is deleted or replaced: no client can reach this daemon any more, and the next
        hook call (or the service manager) starts a fresh one, which must not share the state with an orphan."""
        while True:
            await anyio.sleep(SOCKET_CHECK_S)
            try:
                current = self.socket_path.stat().st_ino
            except OSError:
                current = None
            if current != inode:
                self.stop_for_restart(
                    f"socket {self.socket_path} was removed or replaced; exiting so a fresh daemon can take over"
                )
                return

    async def _signals(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
            task_status.started()
            async for signum in signals:
                if signum == signal.SIGHUP:
                    log.info("SIGHUP: reloading policy")
                    await self.reload_policy()
                else:
                    log.info("%s: shutting down", signal.Signals(signum).name)
                    if self.replicas is not None:
                        await self.replicas.stop()  # first, so that their last reports still reach us
                    self.server.shutdown()


def build_daemon(
    socket_path: Path,
    unparseable: Outcome = Outcome.DENY,
    config_path: str | None = None,
    *,
    primary: PrimaryLink | None = None,
    search_cwd: bool = True,
) -> Daemon:
    """The daemon, or with `primary` a replica of it: no credential broker, zone policy from the primary's cache,
    and decision-log records handed to the primary."""
    config = load_config(config_path, search_cwd=search_cwd)
    guard = Guard.from_environment(
        config_file=Path(config.path) if config.path else None,
        pids=[os.getppid()] if primary is not None else [],  # a replica protects its primary too
    )
    principal = EntityUid("User", resolve_principal_email())
    settings = Settings(principal=principal, unparseable=unparseable, guard=guard)
    store = PolicyStore(LocalSources.from_environment())
    zone, broker = None, None
    if config.zone_id and config.issuer_url:
        # Only with a zone: httpx, joserfc and keyring add about 20 MB to a daemon that does not need them.
        from keycardd.credentials.broker import CredentialBroker  # noqa: PLC0415
        from keycardd.credentials.policy import policy_check  # noqa: PLC0415
        from keycardd.zone.sync import ZoneSync  # noqa: PLC0415

        if primary is None:
            broker = CredentialBroker(config, policy_check=policy_check(lambda: store.engine, settings.principal))
        user_token = broker.user_access_token if broker is not None else None
        zone = ZoneSync.from_config(config, store, paths.state_dir() / "zone-policy.json", user_token=user_token)
    decision_log = DecisionLog(paths.decision_log_path(), sink=primary.buffer_log if primary is not None else None)
    telemetry = telemetry_service.from_config(config, str(principal)) if primary is None else None
    return Daemon(
        socket_path, store, settings, decision_log, zone=zone, broker=broker, primary=primary, telemetry=telemetry
    )


async def serve(
    socket_path: Path,
    unparseable: Outcome = Outcome.DENY,
    config_path: str | None = None,
    processes: int = 1,
    log_level: str = "INFO",
    *,
    http: HttpOptions | None = None,
    autostarted: bool = False,
) -> int:
    """Load the policy first, then take the socket: a client never meets a daemon that cannot answer yet."""
    raise_fd_limit()  # before any replica starts: they inherit it
    paths.ensure_private_dir(paths.state_dir())
    inherited, inherited_tcp = _by_family(systemd.listen_fds())
    if inherited:  # socket activation: systemd owns the socket file and its permissions
        socket_path = Path(inherited[0].getsockname())
    daemon = build_daemon(socket_path, unparseable, config_path, search_cwd=not autostarted)
    await daemon.store.reload()
    if daemon.zone is not None:
        await daemon.zone.load_cache()
    inode = None
    if inherited:
        sock = inherited[0]
        log.info("keycardd %s serving %s, passed in by systemd (pid %d)", __version__, socket_path, os.getpid())
    else:
        paths.check_socket_path(socket_path)
        paths.ensure_private_dir(socket_path.parent, parents=False)
        sock = bind_socket(socket_path)
        inode = socket_path.stat().st_ino
        log.info("keycardd %s listening on %s (pid %d)", __version__, socket_path, os.getpid())
    http = http or HttpOptions()
    http_listener = None
    served = open_listener(http, daemon.handle, reuse_port=processes > 1, inherited=next(iter(inherited_tcp), None))
    if served is not None:
        daemon.http, http_sock = served
        http_listener = await SocketListener.from_socket(http_sock)
        log.info("serving Claude Code http hooks on %s", http_sock.getsockname()[:2])
    if processes > 1:
        daemon.server.balance = ConnectionBalance.create(processes)
        options = ["--unparseable", unparseable.value, "--log-level", log_level, *(["--autostarted"] * autostarted)]
        if served is not None:  # each replica binds the same port (SO_REUSEPORT: the kernel spreads connections)
            options += ["--http-host", http.host, "--http-port", str(http.port)]
        replicas = Replicas(daemon, processes - 1, sock, options + (["--config", config_path] if config_path else []))
        daemon.replicas = replicas
        if daemon.zone is not None:
            daemon.zone.on_change = functools.partial(replicas.signal, signal.SIGHUP)
    try:
        await daemon.run(await SocketListener.from_socket(sock), own_inode=inode, http_listener=http_listener)
    finally:
        systemd.notify("STOPPING=1")
        if inode is not None:
            _unlink_own_socket(socket_path, inode)
        log.info("keycardd stopped")
    return daemon.exit_code


def _by_family(sockets: list[socket.socket]) -> tuple[list[socket.socket], list[socket.socket]]:
    """Socket activation's Unix sockets and its TCP ones (keycardd-http.socket: the http hook port)."""
    unix = [sock for sock in sockets if sock.family == socket.AF_UNIX]
    return unix, [sock for sock in sockets if sock.family != socket.AF_UNIX]


def _unlink_own_socket(path: Path, inode: int) -> None:
    """Remove the socket file on exit, unless another daemon has since replaced it."""
    try:
        if path.stat().st_ino == inode:
            path.unlink()
    except FileNotFoundError:
        pass


def backend_options() -> dict[str, bool]:
    """uvloop roughly halves the event loop's share of each request; plain asyncio is the fallback."""
    return {"use_uvloop": importlib.util.find_spec("uvloop") is not None}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="keycardd", description="The keycardd agent-hook policy daemon.")
    parser.add_argument("--version", action="version", version=f"keycardd {__version__}")
    parser.add_argument("--socket", type=Path, help="socket path (default: $KEYCARDD_SOCKET or the runtime dir)")
    parser.add_argument("--foreground", action="store_true", help="accepted for clarity; keycardd never forks")
    parser.add_argument(
        "--unparseable",
        choices=["deny", "ask"],
        default=os.environ.get("KEYCARDD_UNPARSEABLE", "deny"),
        help="answer for shell lines that cannot be analysed (default: deny)",
    )
    parser.add_argument(
        "--config", help="keycard.toml (default: $CLI_CONFIG, else ./keycard.toml, else ~/.config/keycard/keycard.toml)"
    )
    parser.add_argument(
        "--autostarted",
        action="store_true",
        help="started by a hook shim: run from /, and never read ./keycard.toml (the agent's project)",
    )
    parser.add_argument("--log-level", default=os.environ.get("KEYCARDD_LOG_LEVEL", "INFO"))
    parser.add_argument(
        "--processes",
        type=_process_count,
        default=os.environ.get("KEYCARDD_PROCESSES", "1"),
        help="deciding processes sharing the socket, for many concurrent agents (default 1: one core)",
    )
    parser.add_argument(
        "--http",
        choices=["auto", "on", "off"],
        default=os.environ.get("KEYCARDD_HTTP", "auto"),
        help="serve Claude Code http hooks on loopback (default auto: once `keycardctl install claude --transport "
        "http` has created the hook secret)",
    )
    parser.add_argument("--http-host", default=os.environ.get("KEYCARDD_HTTP_HOST", DEFAULT_HOST))
    parser.add_argument("--http-port", type=_tcp_port, default=os.environ.get("KEYCARDD_HTTP_PORT", str(DEFAULT_PORT)))
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    process_privacy.keep_private()
    socket_path = args.socket or paths.socket_path()
    if args.autostarted:
        os.chdir("/")  # the shim already did; a daemon started any other way with this flag is steered no more
    try:
        return anyio.run(
            functools.partial(
                serve, http=HttpOptions(args.http, args.http_host, args.http_port), autostarted=args.autostarted
            ),
            socket_path,
            Outcome(args.unparseable),
            args.config,
            args.processes,
            args.log_level,
            backend_options=backend_options(),
        )
    except AlreadyRunningError as exc:
        print(f"keycardd: {exc}", file=sys.stderr)
        return 1
    except (PermissionError, ConfigError, paths.UnsafePathError) as exc:
        print(f"keycardd: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _tcp_port(text: str) -> int:
    try:
        return parse_port(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _process_count(text: str) -> int:
    count = int(text) if text.isdigit() else 0
    if not 1 <= count <= MAX_PROCESSES:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to {MAX_PROCESSES}, not {text!r}")
    return count


if __name__ == "__main__":
    sys.exit(main())
