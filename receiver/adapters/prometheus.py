"""Asking Prometheus, through its HTTP API, whether an alert is still firing for a host."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

from receiver.errors import LazarusError


class PrometheusUnavailable(LazarusError):
    retryable = True


class PrometheusAlerts:
    def __init__(self, base_url: str, timeout_s: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s

    def firing(self, alertname: str, label: str, value: str) -> bool:
        """Whether ALERTS{alertname, <label>=value, alertstate="firing"} has a series now."""
        selector = f'ALERTS{{alertname="{_quote(alertname)}",{label}="{_quote(value)}",alertstate="firing"}}'
        url = f"{self.base_url}/api/v1/query?{urllib.parse.urlencode({'query': selector})}"
        try:
            with urllib.request.urlopen(url, timeout=self.timeout_s) as response:  # noqa: S310 (configured URL)
                body = json.loads(response.read())
        except (OSError, ValueError) as exc:
            raise PrometheusUnavailable(f"prometheus query failed: {type(exc).__name__}") from None
        if body.get("status") != "success":
            raise PrometheusUnavailable(f"prometheus query failed: {body.get('error', 'unknown error')}")
        return bool(body.get("data", {}).get("result"))


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')
