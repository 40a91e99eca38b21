"""`keycardctl run`: a command in a secure session, with fresh credentials in its environment and a session socket.

Every `[[credentials.default]]` entry with an `env_var` is obtained before the command starts (failing first, and
naming each credential that could not be had); then the child runs with those variables, `KEYCARD_RUN=1`,
`KEYCARD_RUN_SESSION_ID`, `KEYCARD_ENV` and `KEYCARD_SOCKET`, signals are forwarded, and the session's exit code is
the child's. Hook events from inside the session carry its id, so policy can treat sessions differently.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path

import anyio
import anyio.abc

from keycardd.config import KeycardConfig
from keycardd.credentials.client import CredentialClient
from keycardd.credentials.errors import CredentialDeniedError, NotSignedInError, OAuthError
from keycardd.credentials.session import serve_session
from keycardd.server import bind_socket

FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


class SessionError(Exception):
    """The session could not start; the message names every credential that could not be obtained."""


async def run_session(config: KeycardConfig, command: Sequence[str]) -> int:
    session_id = uuid.uuid4().hex
    client = CredentialClient(config)
    directory = Path(tempfile.mkdtemp(prefix="keycard-run-"))
    try:
        directory.chmod(0o700)
        env = {**os.environ, **await _credentials(client, config, session_id)}
        socket_path = directory / "agent.sock"
        env.update(
            KEYCARD_RUN="1",
            KEYCARD_RUN_SESSION_ID=session_id,
            KEYCARD_ENV=config.environment,
            KEYCARD_SOCKET=str(socket_path),
        )
        listener = await anyio.abc.SocketListener.from_socket(bind_socket(socket_path))
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(
                serve_session, listener, lambda resource, scopes: client.issue(resource, scopes, session_id)
            )
            try:
                process = await anyio.open_process(list(command), stdin=None, stdout=None, stderr=None, env=env)
            except OSError as exc:
                raise SessionError(f"cannot run {command[0]}: {exc.strerror}") from None
            async with process:
                tasks.start_soon(_forward_signals, process)
                code = await process.wait()
            tasks.cancel_scope.cancel()
    finally:
        await client.aclose()
        shutil.rmtree(directory, ignore_errors=True)
    return code if code >= 0 else 128 - code


async def _credentials(client: CredentialClient, config: KeycardConfig, session_id: str) -> dict[str, str]:
    values, failures = {}, []
    for entry in config.credentials:
        if not entry.env_var:
            continue
        try:
            values[entry.env_var] = (await client.issue(entry.resource, (), session_id)).token
        except (CredentialDeniedError, NotSignedInError) as exc:
            failures.append(f"{entry.env_var} ({entry.resource}): {exc}")
        except OAuthError as exc:
            failures.append(f"{entry.env_var} ({entry.resource}): {exc.code}, {exc.action(entry.resource)}")
    if failures:
        raise SessionError("could not obtain " + "; ".join(failures))
    return values


async def _forward_signals(process: anyio.abc.Process) -> None:
    with anyio.open_signal_receiver(*FORWARDED_SIGNALS) as signals:
        async for signum in signals:
            process.send_signal(signum)
