"""The export process: `python -m keycardd.telemetry.exporter`, started by the daemon when export is configured.

Shaping a record and encoding it with the OpenTelemetry SDK costs ~50-100 us of Python; in the daemon's process
that time is taken from deciding (one GIL), and an I/O-bound event loop next to a CPU-bound thread waits up to
the GIL switch interval at every syscall: `bench telemetry` measured a third less throughput at saturation. Here
it runs on its own interpreter; the daemon only writes lines to this process's stdin.

Protocol, one line each: first the settings (JSON), then `D<decision-log record>` or `E<shaped event>`. Counters
go back on stdout as one JSON line every REPORT_S and a last one at exit. End of input (the daemon stopping or
gone) flushes what is queued for at most FLUSH_S, then exits.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import BinaryIO, Protocol

import msgspec

from keycardd import process_privacy
from keycardd.decision_log import DecisionRecord
from keycardd.redact import mask
from keycardd.telemetry import ocsf
from keycardd.telemetry.config import TelemetryConfig

log = logging.getLogger("keycardd.telemetry")

BATCH = 512
BATCH_WINDOW_S = 1.0
"""Records are gathered this long (or until BATCH are queued) before a request."""
ATTEMPTS = 6
BACKOFF_S = 0.5
MAX_BACKOFF_S = 30.0
FLUSH_S = 5.0
"""How long the end of input waits for queued records to be sent (one attempt per batch)."""
REPORT_S = 0.5


class Settings(msgspec.Struct, frozen=True):
    """The first line of input: what `TelemetryConfig` says, and who the records are about."""

    config: TelemetryConfig
    principal: str


class Counters(msgspec.Struct):
    """What `status` shows, reported to the daemon."""

    exported: int = 0
    dropped: int = 0
    retries: int = 0
    failed_requests: int = 0
    queued: int = 0
    last_error: str | None = None


class Sink(Protocol):
    def send(self, events: Sequence[ocsf.LogEvent]) -> bool: ...

    def shutdown(self) -> None: ...


def otlp_sink(config: TelemetryConfig, principal: str) -> Sink:
    from keycardd.telemetry.otlp import OtlpSink  # noqa: PLC0415 - imported in this process only

    return OtlpSink(config, principal)


class Exporter:
    """A bounded queue and one export thread: batches, retries with backoff and jitter, counted drops."""

    def __init__(self, settings: Settings, sink: Sink) -> None:
        self.settings = settings
        self.counters = Counters()
        self._sink = sink
        self._pending: deque[bytes] = deque()
        self._lock = threading.Condition()
        self._stopping = threading.Event()
        self._decode = msgspec.json.Decoder(DecisionRecord).decode
        self._decode_event = msgspec.json.Decoder(ocsf.LogEvent).decode
        self.thread = threading.Thread(target=self._export_loop, name="keycardd-telemetry", daemon=True)

    def put(self, line: bytes) -> None:
        """One input line (`D...` or `E...`), queued unless the queue is full (then counted as dropped)."""
        with self._lock:
            if len(self._pending) >= self.settings.config.queue_size:
                self.counters.dropped += 1
                return
            self._pending.append(line)
            if len(self._pending) in (1, BATCH):
                self._lock.notify()  # the first record starts a batch window, a full batch ends it

    def stop(self, timeout_s: float) -> None:
        """Send what is queued for at most `timeout_s`, then count what is left as dropped."""
        with self._lock:
            self._stopping.set()
            self._lock.notify()
        self.thread.join(timeout_s)
        self._sink.shutdown()
        with self._lock:
            self.counters.dropped += len(self._pending)
            self._pending.clear()

    def report(self) -> bytes:
        with self._lock:
            self.counters.queued = len(self._pending)
            return msgspec.json.encode(self.counters) + b"\n"

    def _export_loop(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            events = [event for item in batch if (event := self._shape(item)) is not None]
            if events:
                self._deliver(events)

    def _next_batch(self) -> list[bytes] | None:
        """Up to BATCH records: gathered for up to BATCH_WINDOW_S after the first, or at once when BATCH are
        queued; None once stopping with none left."""
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
            return [self._pending.popleft() for _ in range(min(BATCH, len(self._pending)))]

    def _shape(self, item: bytes) -> ocsf.LogEvent | None:
        try:
            if item[:1] == b"D":
                return ocsf.decision_event(self._decode(item[1:]), self.settings.principal)
            return self._decode_event(item[1:])
        except msgspec.DecodeError:  # the daemon encodes these lines itself: a bug, not input
            log.exception("telemetry: a record does not decode")
            self._drop(1)
            return None

    def _deliver(self, events: list[ocsf.LogEvent]) -> None:
        """Send one batch: retried with backoff and jitter while running, once more when stopping."""
        for attempt in range(ATTEMPTS):
            try:
                sent = self._sink.send(events)
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
            self._stopping.wait(delay)  # a stop cuts the wait short: one last attempt
        self._drop(len(events))
        log.warning("telemetry: %d records dropped after %d failed requests", len(events), attempt + 1)

    def _drop(self, count: int) -> None:
        with self._lock:
            self.counters.dropped += count


def serve(input_stream: BinaryIO, output: BinaryIO) -> int:
    """Read settings and records from `input_stream` until it ends; report counters on `output`."""
    try:
        settings = msgspec.json.decode(input_stream.readline(), type=Settings)
    except msgspec.DecodeError as exc:
        log.error("telemetry: the daemon sent no usable settings: %s", exc)
        return 2
    exporter = Exporter(settings, otlp_sink(settings.config, settings.principal))
    exporter.thread.start()
    write_lock = threading.Lock()
    done = threading.Event()

    def report_until_done() -> None:
        while not done.wait(REPORT_S):
            with write_lock, contextlib.suppress(OSError):  # a daemon that is gone reads no reports
                output.write(exporter.report())
                output.flush()

    reporter = threading.Thread(target=report_until_done, name="keycardd-telemetry-report", daemon=True)
    reporter.start()
    for line in input_stream:
        exporter.put(line.rstrip(b"\n"))
    exporter.stop(FLUSH_S)
    done.set()
    reporter.join()
    with write_lock:
        output.write(exporter.report())
        output.flush()
    return 0


def main() -> int:
    logging.basicConfig(
        level=os.environ.get("KEYCARDD_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    process_privacy.keep_private()  # it holds the OTLP headers, read from its input
    try:
        return serve(sys.stdin.buffer, sys.stdout.buffer)
    except BrokenPipeError:  # the daemon is gone: nobody to report to
        return 0


if __name__ == "__main__":
    sys.exit(main())
