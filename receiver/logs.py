"""Logging: one JSON object per line, with a last-line-of-defence secret scrubber.

Code never logs secrets on purpose; the scrubber exists so that a mistake (a library that
echoes a URL with a password, say) still does not leak one (safety rule 7).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}
REDACTED = "[REDACTED]"


class SecretScrubber(logging.Filter):
    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def add(self, secret: str) -> None:
        if secret and secret not in self.secrets:
            self.secrets.append(secret)
            self.secrets.sort(key=len, reverse=True)

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            record.msg = self.scrub(record.getMessage())
            record.args = ()
            for key, value in list(record.__dict__.items()):
                if key not in _STANDARD and isinstance(value, str):
                    setattr(record, key, self.scrub(value))
            if record.exc_info and record.exc_info[1] is not None:
                record.exc_text = self.scrub(logging.Formatter().formatException(record.exc_info))
                record.exc_info = None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(
            f"{k}={v}" for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")
        )
        stamp = datetime.fromtimestamp(record.created, UTC)
        base = f"{stamp:%H:%M:%S} {record.levelname:<7} {record.getMessage()}"
        text = f"{base} {extras}".rstrip()
        if record.exc_text:
            text += "\n" + record.exc_text
        return text


def configure(level: str = "INFO", json_lines: bool = True, secrets: Iterable[str] = ()) -> SecretScrubber:
    """Set up the root logger once per process; returns the scrubber to register more secrets."""
    scrubber = SecretScrubber(secrets)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else TextFormatter())
    handler.addFilter(scrubber)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # pyghmi and keystoneauth are chatty at DEBUG and may echo request details.
    for noisy in ("pyghmi", "keystoneauth", "openstack", "urllib3", "stevedore"):
        logging.getLogger(noisy).setLevel(max(logging.getLevelName(level), logging.WARNING))
    return scrubber
