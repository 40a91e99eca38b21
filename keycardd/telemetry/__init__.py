"""Exporting decisions, shadow differences and zone syncs as OpenTelemetry logs (OTLP/HTTP).

`config` reads the standard OTEL_* variables and keycard.toml's `[telemetry]` table; `service`, in the daemon,
collects the records and feeds them to the export process (`exporter`), which shapes them (`ocsf`) and posts them
(`otlp`, the only module that imports the OpenTelemetry packages, and only in that process).
"""
