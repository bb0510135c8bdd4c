"""One settings object: command-line flags over environment (`POSTWERK_*`) over defaults.

Nothing else in Postwerk reads `os.environ`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="POSTWERK_", extra="forbid")

    data_dir: Path = Field(
        default=Path("./postwerk-data"),
        description="Folder for the SQLite database and everything else Postwerk keeps on disk.",
    )
    database_url: str | None = Field(
        default=None,
        description="postgresql://... to use PostgreSQL; default is the SQLite database in the data folder.",
    )
    api: str = Field(default="127.0.0.1:8080", description="HOST:PORT the HTTP API listens on.")
    log_level: str = Field(default="INFO", description="Python logging level.")
    rate_limit_tiers: list[int] = Field(
        default=[100, 500, 1000, 5000], description="Recipients per hour of each sending rate-limit tier."
    )
    default_rate_limit: int = Field(default=500, description="The tier every new mailbox gets.")
    max_request_bytes: int = Field(default=1024 * 1024, description="Largest request body the API reads.")
    api_threads: int = Field(
        default=4, ge=1, le=256, description="Threads for the API's blocking work (database writes, hashing)."
    )

    @field_validator("api")
    @classmethod
    def _check_host_port(cls, value: str) -> str:
        split_host_port(value)
        return value

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "postwerk.db"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.sqlite_path}"

    @property
    def admin_token_file(self) -> Path:
        return self.data_dir / "admin-token"


def split_host_port(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{value!r} is not HOST:PORT")
    return host.strip("[]") or "127.0.0.1", int(port)


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with the given (flag) values taking precedence when not None."""
    return Settings(**{key: value for key, value in overrides.items() if value is not None})
