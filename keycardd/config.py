"""`keycard.toml`, read the way Keycard's CLI reads it, with the same environment overrides.

Precedence, highest first: environment (`ZONE`, `ORG`, `ISSUER_URL`, `KEYCARD_ENV`, `KEYCARD_API_BASE_URL`), then
the file (`--config`, else `$CLI_CONFIG`, else `./keycard.toml`, else `${XDG_CONFIG_HOME:-~/.config}/keycard/
keycard.toml`), then defaults. A daemon a hook started never looks in its working directory (`search_cwd=False`):
the agent's project must not choose the zone for every later session. A missing file is not an error: it means no
zone and no credentials, and keycardd runs on local policy alone.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

import msgspec

log = logging.getLogger(__name__)

ENVIRONMENT_DOMAINS = {
    "production": "keycard.cloud",
    "staging": "keycard-stage.cloud",
    "dev": "keycard-dev.cloud",
    "localdev": "localdev.keycard.sh",
}
DEFAULT_API_BASE_URL = "https://api.keycard.ai"
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


class ConfigError(Exception):
    """The configuration cannot be used; the message names the file or variable and the problem."""


class CredentialEntry(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One `[[credentials.default]]` entry: the env var `keycardctl run` fills with a token for `resource`."""

    resource: str
    env_var: str | None = None


class _Zone(msgspec.Struct, frozen=True, kw_only=True):
    id: str | None = None


class _Org(msgspec.Struct, frozen=True, kw_only=True):
    id: str | None = None


class _Credentials(msgspec.Struct, frozen=True, kw_only=True):
    default: list[CredentialEntry] = []


class _File(msgspec.Struct, frozen=True, kw_only=True):
    """The file as written. Unknown sections and keys are reported (`KeycardConfig.warnings`), not refused:
    Keycard's CLI adds sections over time, but a typo (`[zonee]`, `idd =`) must not pass in silence."""

    environment: str | None = None
    zone: _Zone = _Zone()
    org: _Org = _Org()
    credentials: _Credentials = _Credentials()
    telemetry: dict[str, object] | None = None
    """Read by `keycardd.telemetry.config` (strictly: unknown keys there are errors), and only by the daemon."""


class KeycardConfig(msgspec.Struct, frozen=True, kw_only=True):
    """The effective configuration after applying environment overrides."""

    environment: str = "production"
    zone_id: str | None = None
    org_id: str | None = None
    issuer_url: str | None = None
    """The zone issuer: `$ISSUER_URL`, else `https://<zone-id>.<domain of environment>`, else None (no zone)."""
    api_base_url: str = DEFAULT_API_BASE_URL
    credentials: tuple[CredentialEntry, ...] = ()
    path: str | None = None
    """The file the values came from, if any."""
    warnings: tuple[str, ...] = ()
    """Sections and keys of the file that keycardd does not know (ignored), each naming the file."""
    telemetry: dict[str, object] | None = None
    """The file's `[telemetry]` table as written; `keycardd.telemetry.config` resolves it with the OTEL_* vars."""


def user_config_path(env: Mapping[str, str]) -> Path:
    return Path(env.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "keycard" / "keycard.toml"


def config_path(explicit: str | os.PathLike[str] | None, env: Mapping[str, str], *, search_cwd: bool = True) -> Path:
    if explicit:
        return Path(explicit)
    if env.get("CLI_CONFIG"):
        return Path(env["CLI_CONFIG"])
    here = Path.cwd() / "keycard.toml"
    return here if search_cwd and here.is_file() else user_config_path(env)


def load_config(
    explicit: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None, *, search_cwd: bool = True
) -> KeycardConfig:
    """Read and resolve the configuration; raises `ConfigError` with one clear sentence on any problem."""
    env = os.environ if env is None else env
    path = config_path(explicit, env, search_cwd=search_cwd)
    file = _File()
    found: str | None = None
    warnings: tuple[str, ...] = ()
    if path.is_file():
        try:
            raw = msgspec.toml.decode(path.read_bytes())
            file = msgspec.convert(raw, type=_File)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise ConfigError(f"{path}: {exc}") from None
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
        found = str(path)
        warnings = tuple(f"{path}: {problem} (ignored)" for problem in _unknown_keys(raw))
        for warning in warnings:  # the daemon's log; keycardctl logs only errors and prints these itself
            log.warning("%s", warning)
    elif explicit:
        raise ConfigError(f"config file {path} does not exist")

    environment = env.get("KEYCARD_ENV") or file.environment or "production"
    if environment not in ENVIRONMENT_DOMAINS:
        choices = ", ".join(ENVIRONMENT_DOMAINS)
        where = "KEYCARD_ENV" if env.get("KEYCARD_ENV") else f"{path}: environment"
        raise ConfigError(f"{where}: unknown environment {environment!r} (expected one of {choices})")
    zone_id = env.get("ZONE") or file.zone.id
    issuer = env.get("ISSUER_URL") or (
        f"{'http' if environment == 'localdev' else 'https'}://{zone_id}.{ENVIRONMENT_DOMAINS[environment]}"
        if zone_id
        else None
    )
    api_base = env.get("KEYCARD_API_BASE_URL") or DEFAULT_API_BASE_URL
    if issuer is not None and environment != "localdev":
        require_secure_url(issuer, "the zone issuer (ISSUER_URL)")
    require_secure_url(api_base, "KEYCARD_API_BASE_URL")
    for entry in file.credentials.default:
        if not entry.resource:
            raise ConfigError(f"{found}: a [[credentials.default]] entry has an empty resource")
    return KeycardConfig(
        environment=environment,
        zone_id=zone_id,
        org_id=env.get("ORG") or file.org.id,
        issuer_url=issuer.rstrip("/") if issuer else None,
        api_base_url=api_base.rstrip("/"),
        credentials=tuple(file.credentials.default),
        path=found,
        warnings=warnings,
        telemetry=file.telemetry,
    )


_KNOWN_KEYS: dict[str, frozenset[str] | None] = {
    "environment": None,
    "zone": frozenset({"id"}),
    "org": frozenset({"id"}),
    "credentials": frozenset({"default"}),
    "telemetry": None,
}
"""The sections keycardd reads and their keys (None: a plain value, or a table checked elsewhere).
`[[credentials.default]]` entries are checked strictly by `CredentialEntry` itself, `[telemetry]` by
`keycardd.telemetry.config.TelemetryTable`."""


def _unknown_keys(raw: Mapping[str, object]) -> list[str]:
    problems = []
    for key, value in raw.items():
        if key not in _KNOWN_KEYS:
            problems.append(f"unknown section [{key}]" if isinstance(value, dict) else f"unknown key {key!r}")
            continue
        known = _KNOWN_KEYS[key]
        if known is not None and isinstance(value, dict):
            problems.extend(f"unknown key {key}.{name}" for name in value if name not in known)
    return problems


def require_secure_url(url: str, what: str) -> None:
    """HTTPS everywhere, plain http only for loopback hosts (the local dev zone and tests)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS:
        return
    raise ConfigError(f"{what} must be an https:// URL (plain http only on loopback), got {url!r}")
