"""Where and how telemetry is exported: the standard OpenTelemetry variables, else keycard.toml's `[telemetry]`.

Precedence follows `keycardd.config`: an OTEL_* variable wins over the file. Export is on when an endpoint is set
(`OTEL_EXPORTER_OTLP_LOGS_ENDPOINT`, `OTEL_EXPORTER_OTLP_ENDPOINT`, or `endpoint`/`logs_endpoint` in the file) and
off with `OTEL_SDK_DISABLED=true`, an `OTEL_LOGS_EXPORTER` that does not name `otlp`, or `enabled = false`.
Only OTLP over HTTP with protobuf is exported: it is what the official Python exporter speaks without gRPC's
native library; `http/json` and `grpc` are refused with one sentence naming the variable.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit, urlunsplit

import msgspec

from keycardd.config import ConfigError, require_secure_url
from keycardd.redact import mask

SUPPORTED_PROTOCOL = "http/protobuf"
LOGS_PATH = "/v1/logs"
DEFAULT_TIMEOUT_MS = 10_000
DEFAULT_QUEUE_SIZE = 8192
MAX_QUEUE_SIZE = 1_000_000


class TelemetryTable(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """keycard.toml's `[telemetry]` table as written (a typo in a key is an error: this is an audit trail)."""

    enabled: bool = True
    endpoint: str | None = None
    """The collector's base URL; `/v1/logs` is appended (like OTEL_EXPORTER_OTLP_ENDPOINT)."""
    logs_endpoint: str | None = None
    """The full logs URL, used as it is (like OTEL_EXPORTER_OTLP_LOGS_ENDPOINT)."""
    protocol: str = SUPPORTED_PROTOCOL
    headers: dict[str, str] = {}
    resource_attributes: dict[str, str] = {}
    service_name: str | None = None
    timeout_ms: int = DEFAULT_TIMEOUT_MS
    queue_size: int = DEFAULT_QUEUE_SIZE


@dataclass(frozen=True, slots=True)
class TelemetryConfig:
    """The export's effective settings."""

    endpoint: str
    """The full URL log requests are posted to."""
    headers: tuple[tuple[str, str], ...]
    timeout_s: float
    service_name: str
    resource_attributes: tuple[tuple[str, str], ...]
    queue_size: int
    source: str
    """Where the settings came from: `environment`, or the keycard.toml path."""

    def describe(self) -> dict[str, object]:
        """For `status`: the endpoint (masked: a URL may carry a token) and header names, never header values."""
        return {
            "endpoint": mask(self.endpoint),
            "protocol": SUPPORTED_PROTOCOL,
            "headers": sorted({name for name, _ in self.headers}),
            "source": self.source,
            "queue_size": self.queue_size,
        }


def telemetry_config(
    raw: Mapping[str, object] | None, file_path: str | None, env: Mapping[str, str]
) -> TelemetryConfig | None:
    """The export settings from keycard.toml's `[telemetry]` table (`raw`) and the environment, or None when export
    is off. Raises `ConfigError` (one sentence naming the variable or file) when they cannot be used, including when
    the `keycardd[otlp]` extra is not installed."""
    where = f"{file_path}: [telemetry]" if file_path else "[telemetry]"
    try:
        table = msgspec.convert(raw or {}, type=TelemetryTable)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if _disabled(env) or not table.enabled:
        return None
    endpoint = _endpoint(table, where, env)
    if endpoint is None:
        return None
    protocol_var = _first_set(env, "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
    protocol = env[protocol_var] if protocol_var else table.protocol
    if protocol.strip() != SUPPORTED_PROTOCOL:
        named = protocol_var or f"{where} protocol"
        raise ConfigError(
            f"{named}={protocol!r} is not supported: keycardd exports OTLP over http/protobuf only "
            "(point it at the collector's OTLP/HTTP port, usually 4318)"
        )
    headers_var = _first_set(env, "OTEL_EXPORTER_OTLP_LOGS_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS")
    headers = _pairs(env[headers_var], headers_var) if headers_var else tuple(table.headers.items())
    timeout_var = _first_set(env, "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT")
    timeout_ms = _timeout_ms(env[timeout_var], timeout_var) if timeout_var else table.timeout_ms
    if not 0 < timeout_ms <= 600_000:
        raise ConfigError(f"{timeout_var or where + ' timeout_ms'} must be from 1 to 600000 milliseconds")
    if not 0 < table.queue_size <= MAX_QUEUE_SIZE:
        raise ConfigError(f"{where} queue_size must be from 1 to {MAX_QUEUE_SIZE}")
    resource = dict(table.resource_attributes)
    if env.get("OTEL_RESOURCE_ATTRIBUTES"):
        resource.update(_pairs(env["OTEL_RESOURCE_ATTRIBUTES"], "OTEL_RESOURCE_ATTRIBUTES"))
    service_name = env.get("OTEL_SERVICE_NAME") or table.service_name or resource.pop("service.name", "keycardd")
    resource.pop("service.name", None)
    if not _installed("opentelemetry-exporter-otlp-proto-http"):
        raise ConfigError(
            f"telemetry export to {mask(endpoint)} is configured but the OpenTelemetry exporter is not installed "
            "(pip install 'keycardd[otlp]')"
        )
    uses_env = any(name.startswith("OTEL_EXPORTER_OTLP") for name in env)
    return TelemetryConfig(
        endpoint=endpoint,
        headers=headers,
        timeout_s=timeout_ms / 1000,
        service_name=service_name,
        resource_attributes=tuple(sorted(resource.items())),
        queue_size=table.queue_size,
        source="environment" if uses_env or not file_path else file_path,
    )


def _installed(distribution: str) -> bool:
    """Whether a package is installed, from its metadata: nothing is imported (the daemon never loads the SDK)."""
    try:
        importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def _disabled(env: Mapping[str, str]) -> bool:
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return True
    exporters = env.get("OTEL_LOGS_EXPORTER")
    return exporters is not None and "otlp" not in {name.strip().lower() for name in exporters.split(",")}


def _endpoint(table: TelemetryTable, where: str, env: Mapping[str, str]) -> str | None:
    """The full logs URL: a logs endpoint as it is, a base endpoint with `/v1/logs` appended (the OTLP rule)."""
    if env.get("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"):
        url, named = env["OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"], "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"
    elif env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        url, named = _with_logs_path(env["OTEL_EXPORTER_OTLP_ENDPOINT"]), "OTEL_EXPORTER_OTLP_ENDPOINT"
    elif table.logs_endpoint:
        url, named = table.logs_endpoint, f"{where} logs_endpoint"
    elif table.endpoint:
        url, named = _with_logs_path(table.endpoint), f"{where} endpoint"
    else:
        return None
    try:
        require_secure_url(url, named)
    except ConfigError as exc:  # the message must not repeat a token the URL may carry
        raise ConfigError(mask(str(exc))) from None
    return url.strip()


def _with_logs_path(base: str) -> str:
    parts = urlsplit(base.strip())
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + LOGS_PATH))


def _first_set(env: Mapping[str, str], *names: str) -> str | None:
    return next((name for name in names if env.get(name)), None)


def _pairs(text: str, variable: str) -> tuple[tuple[str, str], ...]:
    """`key1=value1,key2=value2` with percent-encoded values (the OTEL_*_HEADERS and resource attribute form)."""
    pairs = []
    for item in text.split(","):
        if not item.strip():
            continue
        key, separator, value = item.partition("=")
        if not separator or not key.strip():
            raise ConfigError(f"{variable} must be a comma-separated list of key=value pairs")
        pairs.append((unquote(key.strip()), unquote(value.strip())))
    return tuple(pairs)


def _timeout_ms(text: str, variable: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ConfigError(f"{variable} must be a whole number of milliseconds, not {text!r}") from None
