"""POSTing JSON with the standard library, translated into our vocabulary.

Why urllib rather than requests: nothing here logs (urllib3 logs every request line, URL path
included, at DEBUG: a webhook's secret), proxies from the environment still work, and no
extra dependency. Errors never carry the library's text, which may quote the URL.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from receiver import __version__
from receiver.notify.result import FailureReason, NotifyResult, redact_url

MAX_BODY = 64 * 1024
USER_AGENT = f"Lazarus/{__version__}"


@dataclass(frozen=True)
class HttpReply:
    status: int
    body: str
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class TransportFailure(Exception):
    """No HTTP answer: the result to report (timeout or connection error, both retryable)."""

    def __init__(self, result: NotifyResult) -> None:
        super().__init__(result.detail)
        self.result = result


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # A webhook that redirects is misconfigured; following it would resend the body elsewhere.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class JsonPoster:
    """One POST of a JSON body; answers every HTTP status as an `HttpReply`."""

    def __init__(self) -> None:
        self._opener = urllib.request.build_opener(_NoRedirects())

    def post_json(
        self, url: str, body: dict[str, Any], *, timeout_s: float, headers: dict[str, str] | None = None
    ) -> HttpReply:
        where = redact_url(url)
        if not url.startswith(("https://", "http://")):
            raise TransportFailure(
                NotifyResult.failed(FailureReason.CONFIG_ERROR, f"{where}: only http(s) URLs are allowed")
            )
        data = json.dumps(body, separators=(",", ":")).encode()
        request = urllib.request.Request(url, data=data, method="POST")  # noqa: S310 - scheme checked above
        request.add_header("Content-Type", "application/json")
        request.add_header("User-Agent", USER_AGENT)
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with self._opener.open(request, timeout=timeout_s) as response:
                return _reply(response.status, response.headers, response.read(MAX_BODY))
        except urllib.error.HTTPError as exc:
            try:
                raw = exc.read(MAX_BODY) if exc.fp is not None else b""
            except (OSError, http.client.HTTPException):
                raw = b""
            finally:
                exc.close()
            return _reply(exc.code, exc.headers, raw)
        except TimeoutError:
            raise _timeout(where, timeout_s) from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                raise _timeout(where, timeout_s) from None
            raise _unreachable(where, exc.reason) from None
        except (OSError, http.client.HTTPException) as exc:
            raise _unreachable(where, exc) from None


def _reply(status: int, headers: Any, raw: bytes) -> HttpReply:
    names = {k.lower(): v for k, v in headers.items()} if headers is not None else {}
    return HttpReply(status, raw.decode("utf-8", errors="replace"), names)


def _timeout(where: str, timeout_s: float) -> TransportFailure:
    return TransportFailure(
        NotifyResult.failed(FailureReason.TIMEOUT, f"no answer from {where} in {timeout_s:g}s")
    )


def _unreachable(where: str, cause: object) -> TransportFailure:
    # Only the exception's type: its text may quote the URL.
    kind = type(cause).__name__
    return TransportFailure(
        NotifyResult.failed(FailureReason.CONNECTION_ERROR, f"cannot reach {where} ({kind})")
    )
