"""Compiling a policy set without stalling the answers: the heavy half in a child process, the rest in small steps.

cedarpy holds the GIL for each call, and a thread does not help when one call lasts a second. Measured on a
5,000-policy set (870 KB), one run on the shared 2-core machine: Cedar's parser ~1.2 s in one call, its validator
~0.65 s in one call, decoding Cedar's JSON ~0.2 s, mapping statements to lines ~0.3 s, and building the engine's
per-bucket policy sets ~1.3 s in calls of a few milliseconds each. The daemon answered nothing for about a second
at a time during a reload.

So a large set is parsed and validated in a child process (`python -m keycardd.compiler`, under an address-space
limit, so a pathological set fails there, not in the daemon, and gone once it has answered: an idle worker would
keep ~100 MB). The child also builds the engine once as a trial, so every error a build can raise is raised there.
It hands back each policy's Cedar JSON as its own small MessagePack body, and the daemon decodes and indexes them
in a worker thread: steps of milliseconds, between which the event loop gets the GIL back. A small set (the common
case, and the first load, when nobody is waiting) compiles in a thread as before: a process would only add its
start-up time.
"""

from __future__ import annotations

import logging
import resource
import sys
import time
from collections.abc import Sequence
from typing import Any

import anyio
import anyio.to_thread
import msgspec

from keycardd.engine import Engine, PolicyError, PolicyInfo, PolicySource, check_policy_size, parse_policies

log = logging.getLogger(__name__)

IN_PROCESS_BYTES = 256 * 1024
"""Sets smaller than this (up to about 1,500 policies) compile in a thread of the daemon: below it the child's
start-up costs more than the stall it saves. Measured at 1,000 policies (170 KB) under back-to-back calls, in a
thread: live in 0.5-0.7 s, calls up to 85-135 ms slower; through a child: live in 1.3-2.1 s (over the 1 s reload
target), calls at most 11-35 ms slower."""
CHILD_MEMORY = 4 << 30
"""The child's address-space limit: far above what a set within the size limits needs."""


class _Compiled(msgspec.Struct, array_like=True):
    """What the child hands back: the error, or small, separately decodable pieces (decoding one big object graph
    on the event loop would be a stall of its own)."""

    error: str | None = None
    sha256: str = ""
    infos: list[bytes] = []
    statics: list[bytes] = []


async def compile_engine(sources: Sequence[PolicySource], *, in_process: bool = False) -> Engine:
    """Compile `sources` into an `Engine` without holding the event loop for more than a few milliseconds at a time;
    raises `PolicyError` like `Engine.compile`. `in_process` (or a small set) compiles in a thread instead."""
    size = sum(len(source.text) for source in sources)
    if in_process or size < IN_PROCESS_BYTES:
        return await anyio.to_thread.run_sync(Engine.compile, sources)
    check_policy_size(sources)  # before shipping megabytes to a child
    names = ", ".join(source.name for source in sources)
    started = time.perf_counter()
    child = await anyio.run_process(
        [sys.executable, "-m", "keycardd.compiler"], input=msgspec.msgpack.encode(list(sources)), check=False
    )
    if child.returncode != 0:
        detail = child.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [f"exit code {child.returncode}"]
        raise PolicyError(f"{names}: compiling the policy failed in its child process ({detail[0]})")
    compiled = msgspec.msgpack.decode(child.stdout, type=_Compiled)
    if compiled.error is not None:
        raise PolicyError(compiled.error)
    parsed_s = time.perf_counter() - started
    engine = await anyio.to_thread.run_sync(_assemble, tuple(sources), compiled)
    log.info(
        "compiled %d policies: %.1f s parsing in a child process, %.1f s indexing",
        engine.count,
        parsed_s,
        time.perf_counter() - started - parsed_s,
    )
    return engine


def _compile(sources: Sequence[PolicySource]) -> _Compiled:
    """In the child: parse, validate and trial-build."""
    try:
        parsed = parse_policies(sources)
        Engine(*parsed)
    except PolicyError as exc:
        return _Compiled(error=str(exc))
    except MemoryError:
        names = ", ".join(source.name for source in sources)
        return _Compiled(error=f"{names}: compiling the policy needed more than {CHILD_MEMORY >> 30} GiB")
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


def main() -> int:
    """`python -m keycardd.compiler`: sources (MessagePack) on stdin, the compiled result on stdout."""
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard == resource.RLIM_INFINITY or hard > CHILD_MEMORY:
        resource.setrlimit(resource.RLIMIT_AS, (CHILD_MEMORY, hard))
    sources = msgspec.msgpack.decode(sys.stdin.buffer.read(), type=list[PolicySource])
    sys.stdout.buffer.write(msgspec.msgpack.encode(_compile(sources)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
