"""Retrying calls whose error says a retry can help (5xx, timeouts), a bounded number of times."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from receiver.errors import LazarusError

log = logging.getLogger(__name__)
T = TypeVar("T")

ATTEMPTS = 3


def retry_transient(call: Callable[[], T], *, attempts: int = ATTEMPTS, base_delay_s: float = 0.5) -> T:
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except LazarusError as exc:
            if not exc.retryable or attempt == attempts:
                raise
            log.warning("transient failure, retrying", extra={"error": exc.message, "attempt": attempt})
            time.sleep(base_delay_s * 2 ** (attempt - 1))
    raise AssertionError("unreachable")
