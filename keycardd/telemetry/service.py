"""The telemetry export service: a bounded queue, drained by one export thread.

Nothing here is on the request path. The decision log's writer hands over each batch of records it has just
chained and written (`submit_decisions`, from its worker thread: one lock, one append); shadow differences and
zone syncs arrive the same way from their tasks. When the queue is full the new records are dropped and
counted. The export thread gathers records for a moment, shapes them (`ocsf`) and posts them (`otlp`); a batch the
collector does not take is retried with exponential backoff and jitter, and dropped (counted) after the last
attempt. A collector that is down, slow or failing therefore costs deciding nothing: the export thread's own CPU
(shaping and encoding, ~50-100 us a record) is its only cost.

The thread is a daemon thread, not an anyio worker, and it is the one that imports the OpenTelemetry packages (a
few hundred ms the event loop does not wait for). At shutdown `run` waits for the decision log's last write, then
gives the thread what is left of FLUSH_S to send what is queued (one attempt per batch), counts what is left as
dropped and returns, even if a request is still hanging.
"""

from __future__ import annotations

import functools
import logging
import os
import random
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import anyio
import msgspec

from keycardd.adapters import HookAnswer
from keycardd.adapters.decision import Decision
from keycardd.config import KeycardConfig
from keycardd.decision_log import DecisionLog, DecisionRecord, record_of
from keycardd.redact import mask
from keycardd.shadow import ShadowEvaluator
from keycardd.telemetry import ocsf
from keycardd.telemetry.config import TelemetryConfig, telemetry_config

if TYPE_CHECKING:  # the zone modules (httpx, joserfc) are loaded only with a zone
    from keycardd.zone.sync import ZoneStatus, ZoneSync

log = logging.getLogger(__name__)

BATCH = 512
BATCH_WINDOW_S = 1.0
"""Records are gathered this long before a request: a busy daemon sends one request a second, not one a call."""
ATTEMPTS = 6
BACKOFF_S = 0.5
MAX_BACKOFF_S = 30.0
FLUSH_S = 5.0
"""How long shutdown waits for queued records to be sent."""
SWITCH_INTERVAL_S = 0.0005
"""How long the event loop may wait for the GIL while the export thread encodes (Python's default is 5 ms, which
showed as 7-8 ms round-trip p99 with export on against ~1-4 ms off). It only matters while both threads want to run,
so a daemon with nothing to export pays nothing for it."""

Pending = bytes | ocsf.LogEvent
"""An encoded decision-log line (shaped in the export thread) or an event already shaped."""
SinkFactory = Callable[[TelemetryConfig, str], "Sink"]


class Sink(Protocol):
    """What the export thread sends through: `otlp.OtlpSink`, loaded only when the service starts."""

    def send(self, events: Sequence[ocsf.LogEvent]) -> bool: ...

    def shutdown(self) -> None: ...


def otlp_sink(config: TelemetryConfig, principal: str) -> Sink:
    from keycardd.telemetry.otlp import OtlpSink  # noqa: PLC0415 - the SDK is loaded only when export is on

    return OtlpSink(config, principal)


@dataclass
class Counters:
    """What `status` shows; written by the export thread (drops by both sides, under the queue's lock)."""

    exported: int = 0
    dropped: int = 0
    retries: int = 0
    failed_requests: int = 0
    last_error: str | None = None


class TelemetryService:
    def __init__(self, config: TelemetryConfig, principal: str, sink_factory: SinkFactory = otlp_sink) -> None:
        self.config = config
        self.principal = principal
        self.counters = Counters()
        self._sink_factory = sink_factory
        self._pending: deque[Pending] = deque()
        self._lock = threading.Condition()
        self._stopping = threading.Event()
        self._decode = msgspec.json.Decoder(DecisionRecord).decode
        self._upstream_finished: anyio.Event | None = None
        """The decision log's: at shutdown its last records are exported too."""
        self._zone_failing = False
        self._sink: Sink | None = None
        """Created by the export thread; shut down by `run` at the end."""

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
        self._put(lines.splitlines(), records)

    def shadow_difference(self, answer: HookAnswer, shadow: Decision) -> None:
        """A shadow difference (the shadow evaluator's hook): the request masked exactly as the decision log does."""
        record = record_of(answer)
        event = ocsf.shadow_event(record, self.principal, shadow.outcome.value, list(shadow.policies))
        self._put([event], 1)

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
        self._put([event], 1)

    def _put(self, items: Sequence[Pending], records: int) -> None:
        with self._lock:
            if len(self._pending) + len(items) > self.config.queue_size:
                self.counters.dropped += records
                return
            self._pending.extend(items)
            if len(self._pending) == len(items) or len(self._pending) >= BATCH:
                self._lock.notify()  # the first record starts a batch window, a full batch ends it

    # The lifecycle: one task in the daemon's task group.

    async def run(self) -> None:
        """Start the export thread and keep it until cancelled; then flush for at most FLUSH_S."""
        sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL_S))
        thread = threading.Thread(target=self._export_loop, name="keycardd-telemetry", daemon=True)
        thread.start()
        log.info("exporting decisions to %s (OTLP/HTTP)", mask(self.config.endpoint))
        try:
            await anyio.sleep_forever()
        finally:
            with anyio.CancelScope(shield=True):
                deadline = time.monotonic() + FLUSH_S
                if self._upstream_finished is not None:
                    with anyio.move_on_after(FLUSH_S):
                        await self._upstream_finished.wait()
                with self._lock:
                    self._stopping.set()
                    self._lock.notify()
                await anyio.to_thread.run_sync(thread.join, max(0.0, deadline - time.monotonic()))
                if self._sink is not None:
                    self._sink.shutdown()
                with self._lock:
                    left = len(self._pending)
                    self._pending.clear()
                    self.counters.dropped += left
                if left:
                    log.warning("telemetry: %d records not exported before shutdown", left)

    def status(self) -> dict[str, object]:
        counters = self.counters
        with self._lock:
            queued = len(self._pending)
        return {
            "enabled": True,
            **self.config.describe(),
            "queued": queued,
            "exported": counters.exported,
            "dropped": counters.dropped,
            "retries": counters.retries,
            "failed_requests": counters.failed_requests,
            "last_error": counters.last_error,
            "sdk_loaded": sdk_loaded(),
        }

    # The export thread's side.

    def _export_loop(self) -> None:
        try:
            sink = self._sink = self._sink_factory(self.config, self.principal)
        except Exception as exc:  # the extra was checked at start; anything else still must not stop deciding
            log.exception("telemetry: cannot create the OTLP exporter; nothing will be exported")
            self.counters.last_error = mask(f"{type(exc).__name__}: {exc}")
            return
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            events = [event for item in batch if (event := self._shape(item)) is not None]
            if events:
                self._deliver(sink, events)

    def _next_batch(self) -> list[Pending] | None:
        """Up to BATCH records: gathered for up to BATCH_WINDOW_S after the first, or at once when BATCH are
        queued (a busy daemon is not held to BATCH records a window); None once stopping with none left."""
        with self._lock:
            while not self._pending and not self._stopping.is_set():
                self._lock.wait()
            deadline = time.monotonic() + BATCH_WINDOW_S
            while len(self._pending) < BATCH and not self._stopping.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._lock.wait(remaining)
            if not self._pending:
                return None
            count = min(BATCH, len(self._pending))
            return [self._pending.popleft() for _ in range(count)]

    def _shape(self, item: Pending) -> ocsf.LogEvent | None:
        if isinstance(item, ocsf.LogEvent):
            return item
        try:
            return ocsf.decision_event(self._decode(item), self.principal)
        except msgspec.DecodeError:  # the writer encodes these records itself: a bug, not input
            log.exception("telemetry: a decision record does not decode")
            self._drop(1)
            return None

    def _deliver(self, sink: Sink, events: list[ocsf.LogEvent]) -> None:
        """Send one batch: retried with backoff and jitter while running, once when stopping."""
        for attempt in range(ATTEMPTS):
            try:
                sent = sink.send(events)
            except Exception as exc:  # the exporter should not raise; if it does, the batch fails like any other
                log.exception("telemetry export failed")
                sent, self.counters.last_error = False, mask(f"{type(exc).__name__}: {exc}")
            if sent:
                self.counters.exported += len(events)
                self.counters.last_error = None
                return
            self.counters.failed_requests += 1
            self.counters.last_error = self.counters.last_error or "the collector did not accept the batch"
            if attempt + 1 == ATTEMPTS or self._stopping.is_set():
                break
            self.counters.retries += 1
            delay = min(BACKOFF_S * 2**attempt, MAX_BACKOFF_S) * random.uniform(0.5, 1.5)  # noqa: S311 - jitter
            if self._stopping.wait(delay):
                continue  # one last attempt at shutdown
        self._drop(len(events))
        log.warning("telemetry: %d records dropped after %d failed requests", len(events), attempt + 1)

    def _drop(self, count: int) -> None:
        with self._lock:  # the event loop counts its drops too
            self.counters.dropped += count


def from_config(config: KeycardConfig, principal: str, env: Mapping[str, str] | None = None) -> TelemetryService | None:
    """The export service the configuration asks for, or None; raises `ConfigError` when it cannot be used."""
    settings = telemetry_config(config.telemetry, config.path, os.environ if env is None else env)
    return TelemetryService(settings, principal) if settings is not None else None


def sdk_loaded() -> bool:
    """Whether this process has imported the OpenTelemetry SDK: it must not have unless export is configured."""
    return "opentelemetry" in sys.modules


def disabled_status() -> dict[str, object]:
    return {"enabled": False, "sdk_loaded": sdk_loaded()}
