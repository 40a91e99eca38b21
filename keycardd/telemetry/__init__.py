"""Exporting decisions, shadow differences and zone sync results as OpenTelemetry logs (OTLP/HTTP).

`config` reads the standard OTEL_* variables and keycard.toml's `[telemetry]` table, `ocsf` shapes each record,
`service` owns the bounded queue and the export thread, and `otlp` is the only module that imports the
OpenTelemetry packages: it is loaded only when export is configured.
"""
