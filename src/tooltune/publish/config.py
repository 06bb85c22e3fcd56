"""``PublishConfig``: what ``tooltune publish`` needs, shared by the CLI, the library and tests."""

from __future__ import annotations

import os
from pathlib import Path

from typing import Any

from pydantic import ConfigDict, Field, SecretStr, model_validator

from tooltune.errors import ConfigError, DocumentError
from tooltune.httpguard import GuardFields
from tooltune.publish.auth import DEFAULT_ISSUER, Algorithm, TokenRules
from tooltune.safeload import read_text, validate_config

KEY_ENV = "TOOLTUNE_PUBLISH_KEY"


class PublishConfig(GuardFields):
    """One service's publisher."""

    model_config = ConfigDict(extra="forbid")

    service: str = Field(min_length=1, description="Service name, as on the tools of its catalog.")
    data_dir: Path = Field(description="Folder of example JSONL files (e.g. a `data build` output), metadata.yaml, catalog.json.")
    tests: Path | None = Field(None, description="Test scenarios JSONL; default: DIR/tests.jsonl, else DIR's test_*.jsonl and holdout.jsonl.")
    catalog: Path | None = Field(None, description="Tool catalog JSON; default: DIR/catalog.json.")
    key: SecretStr = Field(description="HS256 secret, or the RS256 public key (PEM), that tokens are verified with.")
    algorithm: Algorithm = Field("HS256", description="JWT algorithm: HS256 (shared secret) or RS256 (public key).")
    issuer: str = Field(DEFAULT_ISSUER, min_length=1, description="Tokens must carry this iss claim.")
    audience: str | None = Field(None, description="Tokens must carry this aud claim; default: the service name.")
    max_token_lifetime_s: float = Field(
        86_400.0, gt=0, description="Longest token lifetime (exp - iat) accepted, in seconds, even before it expires.")
    host: str = Field("127.0.0.1", description="Address the publisher listens on (loopback: only local Host names answered).")
    rate_limit: int = Field(100, gt=0, description="Requests per caller per rate_window_s.")
    rate_window_s: float = Field(3600.0, gt=0, description="Window of the rate limit, in seconds.")
    page_size: int = Field(100, gt=0, le=1000, description="Default examples per page (callers may ask for up to 1000).")
    db_url: str | None = Field(None, description="Audit log database (SQLAlchemy URL); default: the registry's.")

    @model_validator(mode="after")
    def _paths_exist(self) -> PublishConfig:
        if self.algorithm == "HS256" and len(self.key.get_secret_value().encode()) < 32:
            raise ValueError("key: an HS256 secret must be at least 32 bytes (RFC 7518 3.2); "
                             "generate one with `python -c 'import secrets; print(secrets.token_urlsafe(48))'`")
        if not self.data_dir.is_dir():
            raise ValueError(f"data_dir {self.data_dir} is not a folder; point --data at the service's example files")
        for name in ("tests", "catalog"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise ValueError(f"{name} {path} does not exist")
        return self

    @classmethod
    def parse(cls, data: dict[str, Any]) -> PublishConfig:
        """Validate ``data``; one ``ConfigError`` names every bad field."""
        return validate_config(cls, data, source="publish config")

    @property
    def token_rules(self) -> TokenRules:
        return TokenRules(issuer=self.issuer, audience=self.audience or self.service,
                          max_lifetime_s=self.max_token_lifetime_s)

    @property
    def catalog_path(self) -> Path:
        return self.catalog or self.data_dir / "catalog.json"


def read_key(key_file: Path | None) -> str:
    """The verification key from ``key_file``, else ``$TOOLTUNE_PUBLISH_KEY``; never a default,
    because a publisher with a well-known key would hand its data to anyone."""
    if key_file is not None:
        try:
            return read_text(key_file).strip()
        except DocumentError as e:
            raise ConfigError(f"{e} (the key file)") from e
    if os.environ.get(KEY_ENV):
        return os.environ[KEY_ENV]
    raise ConfigError(f"no signing key: pass --key-file (HS256 secret or RS256 public key PEM) or set ${KEY_ENV}.")
