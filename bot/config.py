"""Settings from the environment and a `.env` file, validated once at start. Flags win."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlparse

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

__all__ = ["ConfigError", "Settings", "read_env_file"]


class ConfigError(Exception):
    """A setting is missing or wrong; the message says which and how to fix it."""


def _http_url(value: str | None) -> str | None:
    # The value is never echoed: a URL may carry a password (https://user:secret@host/).
    if value is None:
        return None
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https"):
        raise ValueError("must be an http(s) URL, starting with http:// or https://")
    try:
        port_ok = parsed.port is None or parsed.port > 0
    except ValueError:
        port_ok = False
    if not parsed.hostname or not port_ok or any(c.isspace() for c in value):
        raise ValueError("must be an http(s) URL with a host (and a port from 1 to 65535)")
    return value


def _prefixed(prefix: str) -> Any:
    def check(value: str | None) -> str | None:
        if value is not None and not value.startswith(prefix):
            raise ValueError(f"must start with {prefix!r}")
        return value

    return AfterValidator(check)


HttpUrl = Annotated[str | None, AfterValidator(_http_url)]

#: environment variable → Settings field
ENV = {
    "SLACK_BOT_TOKEN": "slack_bot_token",
    "SLACK_SIGNING_SECRET": "slack_signing_secret",
    "SLACK_APP_TOKEN": "slack_app_token",
    "SLACK_API_URL": "slack_api_url",
    "APPROVAL_DB": "db",
    "APPROVAL_API_TOKEN": "api_token",
    "APPROVAL_ADMIN_TOKEN": "admin_token",
    "APPROVAL_CHANNEL": "channel",
    "APPROVAL_CONFIG": "config",
    "APPROVAL_WEBHOOK_URL": "webhook_url",
    "APPROVAL_WEBHOOK_SECRET": "webhook_secret",
    "APPROVAL_URL": "url",
}


def read_env_file(path: Path) -> dict[str, str]:
    """`KEY=value` lines of a `.env` file (comments, `export` and quotes allowed)."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


class Settings(BaseModel):
    """Everything the bot reads from outside, in one validated place."""

    model_config = ConfigDict(frozen=True)

    slack_bot_token: Annotated[str | None, _prefixed("xoxb-")] = None
    slack_signing_secret: str | None = None
    slack_app_token: Annotated[str | None, _prefixed("xapp-")] = None
    slack_api_url: HttpUrl = None
    db: str = "./approvals.db"  # a SQLite file, or a postgresql:// URL shared by replicas
    api_token: str | None = None
    admin_token: str | None = None
    channel: str | None = None
    config: str | None = None
    webhook_url: HttpUrl = None
    webhook_secret: str | None = None
    url: Annotated[str, AfterValidator(_http_url)] = "http://127.0.0.1:3000"
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 3000

    @classmethod
    def load(
        cls,
        environ: Mapping[str, str] | None = None,
        env_file: Path | None = Path(".env"),
        **overrides: Any,
    ) -> Settings:
        """Environment over `.env`, flags (`overrides`, None ignored) over both."""
        source = {
            **(read_env_file(env_file) if env_file else {}),
            **(os.environ if environ is None else environ),
        }
        values: dict[str, Any] = {
            field: source[name] for name, field in ENV.items() if source.get(name)
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "config" not in values and Path("approvals.toml").is_file():
            values["config"] = "approvals.toml"
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            names = {field: name for name, field in ENV.items()}
            problems = [
                f"{names.get(str(err['loc'][0]), err['loc'][0])}: {err['msg']}"
                for err in exc.errors()
            ]
            raise ConfigError("; ".join(problems)) from exc

    def require(self, *fields: str, why: str) -> None:
        """Fail with a clear message when any named setting is unset."""
        names = {field: name for name, field in ENV.items()}
        missing = [names[f] for f in fields if not getattr(self, f)]
        if missing:
            raise ConfigError(f"{', '.join(missing)} must be set {why}")
