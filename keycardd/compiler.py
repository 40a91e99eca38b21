"""Compiling a policy set without stalling the answers: the heavy half in a worker process, the rest in small steps.

cedarpy holds the GIL for each call, and a thread does not help when one call lasts a second. Measured on a
5,000-policy set (870 KB), one run on the shared 2-core machine: Cedar's parser ~1.2 s in one call, its validator
~0.65 s in one call, decoding Cedar's JSON ~0.2 s, mapping statements to lines ~0.3 s, and building the engine's
per-bucket policy sets ~1.3 s in calls of a few milliseconds each. The daemon answered nothing for about a second
at a time during a reload.

So a large set is parsed and validated in a worker process (`anyio.to_process`, under an address-space limit, so
a pathological set fails there, not in the daemon); the worker also builds the engine once as a trial, so every
error a build can raise is raised there. It hands back each policy's Cedar JSON as its own small MessagePack body,
and the daemon decodes and indexes them in a worker thread: steps of milliseconds, between which the event loop
gets the GIL back. A small set (the common case, and the first load, when nobody is waiting) compiles in a thread
as before: a process would only add its start-up time.
"""

from __future__ import annotations

import resource
from collections.abc import Sequence
from typing import Any

import anyio.to_process
import anyio.to_thread
import msgspec

from keycardd.engine import Engine, PolicyError, PolicyInfo, PolicySource, parse_policies

IN_PROCESS_BYTES = 64 * 1024
"""Sets smaller than this (a few hundred policies, milliseconds to compile) compile in a thread of the daemon."""
WORKER_MEMORY = 4 << 30
"""The worker's address-space limit: far above what a set within the size limits needs."""


class _Compiled(msgspec.Struct, array_like=True):
    """What the worker hands back: small, separately decodable pieces (one pickle.loads of a big object graph on
    the event loop would be a stall of its own)."""

    sha256: str
    infos: list[bytes]
    statics: list[bytes]


async def compile_engine(sources: Sequence[PolicySource], *, in_process: bool = False) -> Engine:
    """Compile `sources` into an `Engine` without holding the event loop for more than a few milliseconds at a time;
    raises `PolicyError` like `Engine.compile`. `in_process` (or a small set) compiles in a thread instead."""
    size = sum(len(source.text) for source in sources)
    if in_process or size < IN_PROCESS_BYTES:
        return await anyio.to_thread.run_sync(Engine.compile, sources)
    try:
        compiled: _Compiled = await anyio.to_process.run_sync(_compile_in_worker, tuple(sources), cancellable=True)
    except anyio.BrokenWorkerProcess:
        raise PolicyError(
            f"{', '.join(source.name for source in sources)}: compiling the policy failed in its worker process "
            f"(it may have needed more than {WORKER_MEMORY >> 30} GiB)"
        ) from None
    except MemoryError:
        raise PolicyError(
            f"{', '.join(source.name for source in sources)}: compiling the policy needed more than "
            f"{WORKER_MEMORY >> 30} GiB"
        ) from None
    return await anyio.to_thread.run_sync(_assemble, tuple(sources), compiled)


def _compile_in_worker(sources: tuple[PolicySource, ...]) -> _Compiled:
    """Runs in the worker process: parse, validate and trial-build; PolicyError and MemoryError reach the caller."""
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard == resource.RLIM_INFINITY or hard > WORKER_MEMORY:
        resource.setrlimit(resource.RLIMIT_AS, (WORKER_MEMORY, hard))
    parsed = parse_policies(sources)
    Engine(*parsed)
    encode = msgspec.msgpack.encode
    return _Compiled(
        sha256=parsed.sha256,
        infos=[encode(info) for info in parsed.policies.values()],
        statics=[encode(body) for body in parsed.statics.values()],
    )


def _assemble(sources: tuple[PolicySource, ...], compiled: _Compiled) -> Engine:
    """In a thread of the daemon: decode policy by policy (each a short call, so the GIL changes hands between
    them), then index."""
    info_decoder = msgspec.msgpack.Decoder(PolicyInfo)
    body_decoder = msgspec.msgpack.Decoder()
    infos: dict[str, PolicyInfo] = {}
    statics: dict[str, Any] = {}
    for raw_info, raw_body in zip(compiled.infos, compiled.statics, strict=True):
        info = info_decoder.decode(raw_info)
        infos[info.id] = info
        statics[info.id] = body_decoder.decode(raw_body)
    return Engine(sources, infos, statics, compiled.sha256)
