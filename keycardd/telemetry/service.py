"""The telemetry service in the daemon: collects what is exported and hands it to the export process.

Nothing here is on the request path. The decision log's writer hands over each batch of records it has just
chained and written (`submit_decisions`, from its worker thread: one lock, one append); shadow differences and zone
syncs arrive the same way from their tasks, already shaped. A feeder thread writes them, one line each, to the
export process (`keycardd.telemetry.exporter`), which shapes, batches, encodes and posts them with its own
interpreter: the OpenTelemetry SDK is never loaded into the daemon, and its CPU time is not taken from deciding.
When the daemon's queue is full (the export process is not keeping up, or is gone) new records are dropped and
counted; the export process counts its own drops and reports them with its other counters.

Shutdown: after the decision log's last write, the feeder writes what is queued and closes the process's input;
the process sends what it can within its FLUSH_S and exits; after FLUSH_S plus a margin it is killed.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, BinaryIO

import anyio
import anyio.to_thread
import msgspec

from keycardd.adapters import HookAnswer
from keycardd.adapters.decision import Decision
from keycardd.config import KeycardConfig
from keycardd.decision_log import DecisionLog, record_of
from keycardd.redact import mask
from keycardd.shadow import ShadowEvaluator
from keycardd.telemetry import exporter, ocsf
from keycardd.telemetry.config import TelemetryConfig, telemetry_config

if TYPE_CHECKING:  # the zone modules (httpx, joserfc) are loaded only with a zone
    from keycardd.zone.sync import ZoneStatus, ZoneSync

log = logging.getLogger(__name__)

STOP_MARGIN_S = 2.0
"""Beyond the export process's own FLUSH_S, before it is killed at shutdown."""
RESTART_S = 1.0
MAX_RESTART_S = 60.0
"""An export process that exited is replaced after RESTART_S, doubling up to this while replacements keep failing."""
STALL_S = 10.0
"""An export process that has sent no report for this long (it reports every REPORT_S) is killed and replaced: one
that an agent stopped (`kill -STOP`) would otherwise hold every later record while status called it running."""
WATCH_S = 1.0
_encode = msgspec.json.Encoder().encode


class TelemetryService:
    def __init__(self, config: TelemetryConfig, principal: str) -> None:
        self.config = config
        self.principal = principal
        self.dropped = 0
        """Records the daemon could not hand to the export process (its queue full, or the process gone)."""
        self.reported = exporter.Counters()
        """The running export process's last report."""
        self._earlier = exporter.Counters()
        """The finished export processes' counters, summed."""
        self.restarts = 0
        """Export processes that exited by themselves and were replaced."""
        self._exit_error: str | None = None
        self._last_report = time.monotonic()
        """When the running export process last reported (or started)."""
        self._killed_stalled = False
        self.process: subprocess.Popen[bytes] | None = None
        self._pending: deque[bytes] = deque()
        self._lock = threading.Condition()
        self._stopping = False
        self._upstream_finished: anyio.Event | None = None
        """The decision log's: at shutdown its last records are exported too."""
        self._zone_failing = False
        self._gone: str | None = None
        """Why the export process can no longer be written to, once it cannot: every later record is dropped."""

    def attach(self, decision_log: DecisionLog, shadow: ShadowEvaluator, zone: ZoneSync | None) -> None:
        """Hook into the services whose results are exported."""
        decision_log.export = self.submit_decisions
        self._upstream_finished = decision_log.finished
        shadow.on_difference = self.shadow_difference
        if zone is not None:
            zone.on_result = functools.partial(self.zone_synced, zone.config.zone_id or "")

    # The producers' side (the decision log's writer thread, the shadow and zone tasks): never blocks, never raises.

    def submit_decisions(self, lines: bytes, records: int) -> None:
        """A batch of encoded decision-log records (the decision log's `export` hook)."""
        self._put([b"D" + line + b"\n" for line in lines.splitlines()])

    def shadow_difference(self, answer: HookAnswer, shadow: Decision) -> None:
        """A shadow difference (the shadow evaluator's hook): the request masked exactly as the decision log does."""
        event = ocsf.shadow_event(record_of(answer), self.principal, shadow.outcome.value, list(shadow.policies))
        self._put([b"E" + _encode(event) + b"\n"])

    def zone_synced(self, zone_id: str, status: ZoneStatus, changed: bool) -> None:
        """A zone sync's result (the zone sync's hook), when it says something: new policy installed, a failure,
        or the first success after failures. A poll that found nothing new is not a record."""
        failing = status.last_error is not None
        recovered, self._zone_failing = self._zone_failing and not failing, failing
        if not (changed or failing or recovered):
            return
        event = ocsf.zone_sync_event(
            time_ns=time.time_ns(),
            zone_id=zone_id,
            version=status.version,
            changed=changed,
            error=status.last_error,
            reason=status.last_error_reason,
        )
        self._put([b"E" + _encode(event) + b"\n"])

    def _put(self, lines: Sequence[bytes]) -> None:
        with self._lock:
            if self._gone or len(self._pending) + len(lines) > self.config.queue_size:
                self.dropped += len(lines)
                return
            self._pending.extend(lines)
            self._lock.notify()

    # The lifecycle: one task in the daemon's task group.

    async def run(self) -> None:
        """Keep an export process running and fed until cancelled; then hand it the rest and let it flush.

        A process that exits (an agent may kill it: it is not the daemon) or cannot start stops nothing else: it is
        reported, what it held and what arrives meanwhile is counted as dropped, and a new one is started after a
        delay that doubles while they keep failing (RESTART_S up to MAX_RESTART_S)."""
        delay = RESTART_S
        while True:
            started = time.monotonic()
            await self._run_process()
            if time.monotonic() - started > MAX_RESTART_S:
                delay = RESTART_S  # it ran for a while: the next failure is a new story
            await anyio.sleep(delay)
            delay = min(delay * 2, MAX_RESTART_S)

    async def _run_process(self) -> None:
        """One export process, from start until it exits by itself (returns) or the daemon stops (cancelled)."""
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "keycardd.telemetry.exporter"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=exporter_environment(os.environ),
                start_new_session=True,  # a ^C to the daemon's terminal reaches the daemon, which stops it in order
            )
        except OSError as exc:
            log.error("telemetry: cannot start the export process: %s; records are counted as dropped", exc)
            self._lost("the export process could not start")
            return
        assert process.stdin is not None and process.stdout is not None
        with self._lock:
            self.process, self._gone = process, None
            self._last_report, self._killed_stalled = time.monotonic(), False
        retired = threading.Event()
        settings = _encode(exporter.Settings(self.config, self.principal)) + b"\n"
        feeder = threading.Thread(target=self._feed, args=(process.stdin, settings, retired), daemon=True)
        reader = threading.Thread(target=self._read_reports, args=(process.stdout,), daemon=True)
        feeder.start()
        reader.start()
        log.info("exporting decisions to %s (OTLP/HTTP, pid %d)", mask(self.config.endpoint), process.pid)
        try:
            code = await self._wait_or_kill_when_stalled(process)
        finally:
            with anyio.CancelScope(shield=True):
                if process.returncode is None:  # cancelled: the daemon is stopping
                    await self._stop(process, feeder, reader)
        with self._lock:
            retired.set()
            self._lock.notify_all()
        await anyio.to_thread.run_sync(feeder.join, 1.0)  # a write to the dead process's pipe fails at once
        await anyio.to_thread.run_sync(reader.join, 1.0)  # its last report: what the dead process had counted
        self._retire_counters()
        self.restarts += 1
        self._exit_error = (
            f"the export process sent no report for {STALL_S:.0f} s and was killed; a new one is started"
            if self._killed_stalled
            else f"the export process exited (status {code}); a new one is started"
        )
        log.error("telemetry: %s; records are counted as dropped meanwhile", self._exit_error)
        self._lost(self._exit_error)

    async def _wait_or_kill_when_stalled(self, process: subprocess.Popen[bytes]) -> int:
        """The process's exit status, once it exits; one that stops reporting is killed first (and so replaced)."""
        while True:
            try:
                return await anyio.to_thread.run_sync(process.wait, WATCH_S, abandon_on_cancel=True)
            except subprocess.TimeoutExpired:
                silent_s = time.monotonic() - self._last_report
                if silent_s > STALL_S and process.poll() is None:
                    log.error(
                        "telemetry: the export process sent no report for %.0f s (stopped?); replacing it", silent_s
                    )
                    self._killed_stalled = True
                    process.kill()

    async def _stop(self, process: subprocess.Popen[bytes], feeder: threading.Thread, reader: threading.Thread) -> None:
        deadline = time.monotonic() + exporter.FLUSH_S + STOP_MARGIN_S
        if self._upstream_finished is not None:
            with anyio.move_on_after(exporter.FLUSH_S):
                await self._upstream_finished.wait()
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
        try:
            await anyio.to_thread.run_sync(process.wait, max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("telemetry: the export process did not finish in time; stopping it")
            process.kill()
            await anyio.to_thread.run_sync(process.wait)
        await anyio.to_thread.run_sync(feeder.join, 1.0)  # a killed process's pipe fails any write it was blocked in
        await anyio.to_thread.run_sync(reader.join, 1.0)
        with self._lock:
            left = len(self._pending)
            self._pending.clear()
            self.dropped += left

    def _feed(self, stdin: BinaryIO, settings: bytes, retired: threading.Event) -> None:
        """The feeder thread of one export process: settings first, then every queued line; closes the input once
        stopping and empty, or once its process has exited (`retired`: the lines are left to the next process)."""
        try:
            stdin.write(settings)
            stdin.flush()
            while True:
                with self._lock:
                    while not self._pending and not self._stopping and not retired.is_set():
                        self._lock.wait()
                    if retired.is_set() or not self._pending:
                        break
                    lines = b"".join(self._pending)
                    self._pending.clear()
                try:
                    stdin.write(lines)
                    stdin.flush()
                except OSError:
                    with self._lock:
                        self.dropped += lines.count(b"\n")
                    raise
        except OSError as exc:
            log.error("telemetry: the export process is gone (%s); records are counted as dropped", exc)
            self._lost("the export process exited")
        finally:
            with contextlib.suppress(OSError):  # its last buffered bytes had no reader
                stdin.close()

    def _retire_counters(self) -> None:
        """Fold a finished process's last report into the totals, so that `status` counts across restarts."""
        last, self.reported = self.reported, exporter.Counters()
        earlier = self._earlier
        self._earlier = exporter.Counters(
            exported=earlier.exported + last.exported,
            dropped=earlier.dropped + last.dropped + last.queued,  # what it still held died with it
            retries=earlier.retries + last.retries,
            failed_requests=earlier.failed_requests + last.failed_requests,
        )

    def _lost(self, why: str) -> None:
        """No export process to write to: what is queued and everything later is counted as dropped."""
        with self._lock:
            self._gone = why
            self.dropped += len(self._pending)
            self._pending.clear()

    def _read_reports(self, stdout: BinaryIO) -> None:
        decode = msgspec.json.Decoder(exporter.Counters).decode
        for line in stdout:
            try:
                self.reported = decode(line)
                self._last_report = time.monotonic()
            except msgspec.DecodeError:
                log.error("telemetry: the export process sent an unreadable report")

    def status(self) -> dict[str, object]:
        reported, earlier = self.reported, self._earlier
        with self._lock:
            queued = len(self._pending) + reported.queued
        return {
            "enabled": True,
            **self.config.describe(),
            "pid": self.process.pid if self.process is not None else None,
            "queued": queued,
            "exported": earlier.exported + reported.exported,
            "dropped": self.dropped + earlier.dropped + reported.dropped,
            "retries": earlier.retries + reported.retries,
            "failed_requests": earlier.failed_requests + reported.failed_requests,
            "last_error": self._gone or reported.last_error or self._exit_error,
            "restarts": self.restarts,
            "sdk_loaded": sdk_loaded(),
        }


def from_config(config: KeycardConfig, principal: str, env: Mapping[str, str] | None = None) -> TelemetryService | None:
    """The export service the configuration asks for, or None; raises `ConfigError` when it cannot be used."""
    settings = telemetry_config(config.telemetry, config.path, os.environ if env is None else env)
    return TelemetryService(settings, principal) if settings is not None else None


def exporter_environment(env: Mapping[str, str]) -> dict[str, str]:
    """The export process's environment: the daemon's without secrets. It gets the OTLP headers with its settings on
    stdin and needs no Keycard credential; in its environment they would be readable by any process of the user, the
    agent's included, in /proc/<pid>/environ (or `ps eww`) until it makes itself undumpable."""
    return {name: value for name, value in env.items() if name not in _SECRET_VARIABLES}


_SECRET_VARIABLES = frozenset(
    {
        "OTEL_EXPORTER_OTLP_HEADERS",
        "OTEL_EXPORTER_OTLP_LOGS_HEADERS",
        "KEYCARD_API_API_KEY",
        "KEYCARD_API_CLIENT_SECRET",
        "KEYCARD_API_TOKEN",
    }
)


def sdk_loaded() -> bool:
    """Whether this process has imported the OpenTelemetry SDK: the daemon never does (the export process does)."""
    return "opentelemetry" in sys.modules


def disabled_status() -> dict[str, object]:
    return {"enabled": False, "sdk_loaded": sdk_loaded()}
