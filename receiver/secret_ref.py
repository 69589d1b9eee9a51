"""Where a secret lives (an environment variable or a file), never the value itself.

BMC passwords, webhook URLs and routing keys are all configured this way. The value is read
only when it is needed; errors name the reference and never the value."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, model_validator

from receiver.domain.model import Secret
from receiver.errors import ConfigError


class SecretRef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    env: str | None = None
    file: Path | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of 'env' or 'file'")
        return self

    def describe(self) -> str:
        return f"env:{self.env}" if self.env else f"file:{self.file}"

    def resolve(self, what: str) -> Secret:
        """Read the value now; `what` names it in errors (e.g. "host node-01: bmc.password")."""
        if self.env is not None:
            value = os.environ.get(self.env, "").strip()  # a stray newline from a secrets manager
            if not value:
                raise ConfigError(f"{what}: environment variable {self.env} is not set")
            return Secret(value)
        assert self.file is not None
        try:
            value = self.file.read_text().strip()  # files end with a newline
        except OSError as exc:
            raise ConfigError(f"{what}: cannot read {self.file}: {exc.strerror}") from None
        if not value:
            raise ConfigError(f"{what}: {self.file} is empty")
        return Secret(value)
