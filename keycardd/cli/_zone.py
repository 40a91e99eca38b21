"""The keycard.toml configuration as keycardctl's zone commands see it (flags override it)."""

from __future__ import annotations

import argparse
import os
import sys

from keycardd.cli._common import CliError
from keycardd.config import ConfigError, KeycardConfig, load_config


def add_zone_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--zone", help="zone id (overrides keycard.toml and $ZONE)")
    parser.add_argument("--org", help="organisation id (overrides keycard.toml and $ORG)")
    parser.add_argument("--config", help="keycard.toml to read (default: $CLI_CONFIG, else ./keycard.toml)")


def zone_config(args: argparse.Namespace) -> KeycardConfig:
    env = dict(os.environ)
    if getattr(args, "zone", None):
        env["ZONE"] = args.zone
    if getattr(args, "org", None):
        env["ORG"] = args.org
    try:
        config = load_config(getattr(args, "config", None), env)
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    for warning in config.warnings:
        print(f"keycardctl: warning: {warning}", file=sys.stderr)
    if not config.zone_id or not config.issuer_url:
        raise CliError("no Keycard zone is configured: pass --zone, set ZONE, or add [zone] id to keycard.toml")
    return config
