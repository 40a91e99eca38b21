"""keycard.toml as Keycard's CLI reads it: file, --config / CLI_CONFIG, environment overrides, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from keycardd.config import ConfigError, load_config

TOML = """
environment = "staging"
[zone]
id = "o36mbsre94s2vlt8x5jq6nbxs0"
[org]
id = "acme"
[[credentials.default]]
env_var = "GH_TOKEN"
resource = "https://api.github.com"
[[credentials.default]]
resource = "urn:my-app:client_secret"
[run]
template_file = ".env.template"
"""


def test_file_values_and_derived_issuer(tmp_path: Path) -> None:
    (tmp_path / "keycard.toml").write_text(TOML)
    config = load_config(tmp_path / "keycard.toml", env={})
    assert config.environment == "staging"
    assert config.zone_id == "o36mbsre94s2vlt8x5jq6nbxs0"
    assert config.org_id == "acme"
    assert config.issuer_url == "https://o36mbsre94s2vlt8x5jq6nbxs0.keycard-stage.cloud"
    assert config.api_base_url == "https://api.keycard.ai"
    assert [(c.env_var, c.resource) for c in config.credentials] == [
        ("GH_TOKEN", "https://api.github.com"),
        (None, "urn:my-app:client_secret"),
    ]


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    (tmp_path / "keycard.toml").write_text(TOML)
    env = {
        "CLI_CONFIG": str(tmp_path / "keycard.toml"),
        "ZONE": "z2",
        "ORG": "o2",
        "KEYCARD_ENV": "production",
        "ISSUER_URL": "https://issuer.example.com/",
        "KEYCARD_API_BASE_URL": "http://127.0.0.1:8080",
    }
    config = load_config(env=env)
    assert (config.zone_id, config.org_id, config.environment) == ("z2", "o2", "production")
    assert config.issuer_url == "https://issuer.example.com"
    assert config.api_base_url == "http://127.0.0.1:8080"


def test_no_file_means_no_zone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_config(env={})
    assert config.zone_id is None and config.issuer_url is None and config.credentials == ()


@pytest.mark.parametrize(
    ("content", "env", "message"),
    [
        ('environment = "moon"', {}, "unknown environment 'moon'"),
        ("[zone]\nid = 3", {}, "Expected `str | null`"),
        ("not toml = = =", {}, "keycard.toml"),
        ("", {"ZONE": "z", "ISSUER_URL": "http://zone.example.com"}, "plain http only on loopback"),
        ("", {"KEYCARD_API_BASE_URL": "ftp://api"}, "KEYCARD_API_BASE_URL must be an https:// URL"),
        ('[[credentials.default]]\nresource = ""', {}, "empty resource"),
    ],
)
def test_bad_configuration_is_one_clear_sentence(
    tmp_path: Path, content: str, env: dict[str, str], message: str
) -> None:
    path = tmp_path / "keycard.toml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("|", r"\|")):
        load_config(path, env=env)


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml", env={})
