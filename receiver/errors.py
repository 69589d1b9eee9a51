"""The one error tree of Lazarus.

Every error says whether trying again can help (``retryable``), so the job and HTTP
boundaries can decide between "retry later" and "stop and tell a human" without
matching on message text. Messages name the object and the field; they never
contain a secret (BMC passwords, tokens, webhook URLs).

    LazarusError
    ├── ConfigError                  bad settings or inventory (names the key)
    ├── InputError                   bad request data (names the field)
    ├── NotFound                     a record, host or server that does not exist
    ├── StoreUnavailable             Redis unreachable            (retryable)
    ├── FenceError                   the host could not be proven off
    │   ├── BmcUnreachable           no answer within the timeout (retryable)
    │   ├── BmcRefused               the BMC rejected the command or login
    │   └── PowerStillOn             the BMC kept reporting ON after power-off
    └── ComputeError                 Nova said no or could not be reached
        ├── ComputeUnavailable       connection error, 5xx, timeout (retryable)
        └── ComputeRejected          a 4xx from Nova (carries the request id)
"""

from __future__ import annotations


class LazarusError(Exception):
    """Base of every error Lazarus raises on purpose."""

    retryable: bool = False

    def __init__(self, message: str, *, retryable: bool | None = None) -> None:
        super().__init__(message)
        if retryable is not None:
            self.retryable = retryable

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class ConfigError(LazarusError):
    """Settings or inventory are invalid; the message names the key."""


class InputError(LazarusError):
    """A request or file carries invalid data; ``field`` names where."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class UnknownReference(InputError):
    """A request names something that does not exist, where the answer is "bad request"
    rather than "not found" (an unknown pagination marker, a host Nova has no compute service
    for); ``problem`` is the whole sentence, as Masakari words it."""


class NotFound(LazarusError):
    """The named thing does not exist."""


class StoreUnavailable(LazarusError):
    """Redis cannot be reached; nothing was written."""

    retryable = True


class FenceError(LazarusError):
    """The host could not be proven powered off. Never evacuate after this."""


class BmcUnreachable(FenceError):
    """The BMC did not answer within the timeout."""

    retryable = True


class BmcRefused(FenceError):
    """The BMC answered, but refused the login or the command."""


class PowerStillOn(FenceError):
    """The BMC accepted power-off but kept reporting the host ON."""


class ComputeError(LazarusError):
    """Nova refused a request or could not be reached."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool | None = None,
        status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, retryable=retryable)
        self.status = status
        self.request_id = request_id

    @property
    def described(self) -> str:
        """The message with Nova's request id (for the record: it finds the request in Nova's logs)."""
        if self.request_id and self.request_id not in self.message:
            return f"{self.message}; request {self.request_id}"
        return self.message


class ComputeUnavailable(ComputeError):
    """Connection refused, timeout or 5xx from Nova."""

    retryable = True


class ComputeRejected(ComputeError):
    """Nova answered 4xx: the request is wrong for the current state."""
