"""The per-user policy bundle (`GET /policy/bundle`, tar+gzip): unpacked in memory, checked, never trusted as sent.

Layout: `manifest.json`, `schema.cedarschema`, `policies/<public_id>.cedar`. Every file's `sha256:<hex>` in the
manifest must match its bytes, and the bundle digest (policies sorted by `(public_id, new_policy)`, `name`s
removed, RFC 8785, sha256) must match the ETag the zone sent. Path traversal, duplicate entries, links, devices and
anything over 64 MiB unpacked are rejected outright.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import tarfile
import zlib
from typing import Any

import rfc8785

from keycardd.zone.errors import ZoneError

MEDIA_TYPE = "application/vnd.keycard.policy-bundle.v1+tar+gzip"
MAX_UNPACKED = 64 * 1024 * 1024
_POLICY_NAME = re.compile(r"^policies/([A-Za-z0-9_.-]+)\.cedar$")


def file_sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def bundle_digest(manifest: dict[str, Any]) -> str:
    policies = [{key: value for key, value in entry.items() if key != "name"} for entry in manifest.get("policies", [])]
    policies.sort(key=lambda entry: (str(entry.get("public_id", "")), str(entry.get("new_policy", ""))))
    return file_sha(rfc8785.dumps({**manifest, "policies": policies}))


def parse_bundle(archive: bytes, etag: str | None) -> dict[str, str]:
    """Verify a bundle and return its policies by public id; raises `ZoneError` naming the first problem."""
    files = _unpack(archive)
    try:
        manifest = json.loads(files.pop("manifest.json"))
    except KeyError:
        raise ZoneError("the policy bundle has no manifest.json", reason="bundle") from None
    except ValueError:
        raise ZoneError("the policy bundle's manifest.json is not JSON", reason="bundle") from None
    files.pop("schema.cedarschema", None)
    policies: dict[str, str] = {}
    for entry in manifest.get("policies", []):
        public_id = entry.get("public_id") if isinstance(entry, dict) else None
        if not isinstance(public_id, str):
            raise ZoneError("a policy bundle manifest entry has no public_id", reason="bundle")
        data = files.pop(f"policies/{public_id}.cedar", None)
        if data is None:
            raise ZoneError(f"the policy bundle lacks the file for {public_id}", reason="bundle")
        if file_sha(data) != entry.get("sha"):
            raise ZoneError(f"policy {public_id} in the bundle does not match its sha256", reason="bundle")
        policies[public_id] = data.decode("utf-8", "strict")
    if files:
        raise ZoneError(
            f"the policy bundle holds files its manifest does not list: {', '.join(sorted(files))}", reason="bundle"
        )
    if etag is not None and etag.strip('"').removeprefix("W/").strip('"') != bundle_digest(manifest):
        raise ZoneError("the policy bundle's digest does not match the ETag the zone sent", reason="bundle")
    return policies


def _unpack(archive: bytes) -> dict[str, bytes]:
    try:
        raw = _gunzip_bounded(archive)
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
            return _members(tar)
    except (OSError, EOFError, tarfile.TarError, zlib.error) as exc:
        raise ZoneError(f"the policy bundle is not a tar+gzip archive ({exc})", reason="bundle") from None


def _members(tar: tarfile.TarFile) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for member in tar:
        name = member.name
        if not member.isfile():
            raise ZoneError(f"the policy bundle holds a link or special file: {name}", reason="bundle")
        expected = name in ("manifest.json", "schema.cedarschema") or _POLICY_NAME.match(name)
        if name.startswith("/") or ".." in name.split("/") or not expected:
            raise ZoneError(f"the policy bundle holds an unexpected path: {name!r}", reason="bundle")
        if name in files:
            raise ZoneError(f"the policy bundle holds {name} twice", reason="bundle")
        handle = tar.extractfile(member)
        files[name] = handle.read() if handle is not None else b""
    return files


def _gunzip_bounded(archive: bytes) -> bytes:
    """Decompress, refusing to produce more than MAX_UNPACKED bytes (a small archive can be a huge bomb)."""
    out = bytearray()
    with gzip.GzipFile(fileobj=io.BytesIO(archive)) as stream:
        while chunk := stream.read(1 << 20):
            out += chunk
            if len(out) > MAX_UNPACKED:
                raise ZoneError("the policy bundle unpacks to more than 64 MiB", reason="bundle")
    return bytes(out)


def build_bundle(
    policies: dict[str, str],
    schema: str = "",
    *,
    extra: tuple[tuple[str, bytes, bytes], ...] = (),
    forged: dict[str, str] | None = None,
) -> tuple[bytes, str]:
    """A deterministic bundle (USTAR, mode 0644, mtime 0) and its digest: the dev zone's side of the codec.

    `extra` appends raw members `(name, type flag, data)`, and `forged` writes other text than the manifest
    describes: how the dev zone makes the malformed bundles the tests feed to the verifier."""
    manifest = {"schema": {"version": "2026-03-16", "sha": file_sha(schema.encode())}, "target_type": "user",
                "policies": [{"public_id": pid, "name": pid, "sha": file_sha(text.encode())}
                             for pid, text in sorted(policies.items())]}  # fmt: skip
    members = [("manifest.json", json.dumps(manifest).encode()), ("schema.cedarschema", schema.encode())]
    written = {**policies, **(forged or {})}
    members += [(f"policies/{pid}.cedar", text.encode()) for pid, text in sorted(written.items())]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
        for name, kind, data in extra:
            info = tarfile.TarInfo(name)
            info.type, info.size, info.mode, info.mtime = kind, len(data), 0o644, 0
            if kind == tarfile.SYMTYPE:
                info.linkname, info.size = "/etc/passwd", 0
            tar.addfile(info, io.BytesIO(data) if info.size else None)
    return gzip.compress(buffer.getvalue(), mtime=0), bundle_digest(manifest)
