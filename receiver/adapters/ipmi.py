"""`PowerController` over IPMI 2.0 (RMCP+, "lanplus") with pyghmi.

Three traps of pyghmi's client shape this module (shared/research/ipmi-notes.md):

* Credentials go in as bytes. With str, pyghmi files a session under a str key and
  deletes it under a bytes key, so a second login to the same BMC in one process (the
  same host fenced twice by a long-lived worker) waits forever on the stale entry.
* pyghmi has no per-call timeout: a mute BMC fails after ~4.6 s with an exception whose
  message is `None`, and a session that dies mid-command retries on its own schedule.
  Every call here runs on a helper thread and the caller waits at most `timeout_s`.
* pyghmi's state is process-wide: an I/O thread, its sockets and a session table. A
  child forked after the parent used pyghmi (RQ forks a work horse per job) inherits
  the table but not the thread, and every call of the child would go unanswered. So
  the child forgets all of it at fork, and starts afresh on first use.
* pyghmi's sessions share one process-wide event loop; calls may run in any thread
  (its loop was built for that), but two calls on one session would share its state.
  So calls to one BMC are serialized by a lock per BMC, every call logs in on its own
  session and logs out again, and calls to different BMCs run concurrently.

Error messages are built here from the host, the BMC's address:port, the action and a
reason taken only from pyghmi's fixed tables of IPMI/RMCP+ codes; they never carry
pyghmi's free text, the user's password, or a chained pyghmi exception.
"""

from __future__ import annotations

import collections
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from receiver.domain.model import BmcTarget, PowerState
from receiver.errors import BmcRefused, BmcUnreachable, FenceError

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_TIMEOUT_S = 10.0

# One lock per BMC (address, port) for the whole process, like pyghmi's session table:
# two IpmiPower objects must not drive one BMC at once either.
_BMC_LOCKS: dict[tuple[str, int], threading.Lock] = {}
_BMC_LOCKS_GUARD = threading.Lock()
_fork_hook_registered = False

# pyghmi's messages for "no answer": a login nobody answered carries None; a session
# that stopped answering says one of these.
_NO_ANSWER_MESSAGES = frozenset({"None", "", "Session no longer connected", "timeout", "Timeout"})
_GENERATED_CODE_MESSAGE = re.compile(
    r"(Unknown code 0x[0-9a-fA-F ]{2} encountered|Unrecognized RMCP code \d+)( in RAKP2| reported in RAKP4)?"
)


def _known_refusals() -> frozenset[str]:
    """Every refusal text pyghmi can produce from a code table: safe to repeat verbatim."""
    from pyghmi.ipmi.private import constants

    texts = {"Incorrect password provided", "Invalid RAKP4 integrity code (wrong Kg?)"}
    texts.update(constants.ipmi_completion_codes.values())
    for codes in constants.command_completion_codes.values():
        texts.update(codes.values())
    for rmcp_text in constants.rmcp_codes.values():
        texts.update({rmcp_text, f"{rmcp_text} in RAKP2", f"{rmcp_text} reported in RAKP4"})
    return frozenset(texts)


@dataclass
class _Outcome:
    done: threading.Event = field(default_factory=threading.Event)
    value: Any = None
    error: BaseException | None = None


class IpmiPower:
    """Hard power control of hosts through their BMCs; implements `PowerController`.

    Each call returns or raises within `timeout_s` (plus the time to start a thread):
    `BmcUnreachable` when the BMC did not answer in time, `BmcRefused` when it refused
    the login or the command.
    """

    def __init__(self, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        self._timeout_s = timeout_s
        self._refusals: frozenset[str] | None = None

    def power_off(self, target: BmcTarget) -> None:
        """Ask for a hard power-off; returns once the BMC accepted it. Read the state back."""
        self._call(target, "power-off", lambda ipmi: ipmi.set_power("off", wait=False))

    def power_on(self, target: BmcTarget) -> None:
        self._call(target, "power-on", lambda ipmi: ipmi.set_power("on", wait=False))

    def power_state(self, target: BmcTarget) -> PowerState:
        reply = self._call(target, "power-state read", lambda ipmi: ipmi.get_power())
        state = reply.get("powerstate") if isinstance(reply, dict) else None
        if state == "on":
            return PowerState.ON
        if state == "off":
            return PowerState.OFF
        return PowerState.UNKNOWN

    def _call(self, target: BmcTarget, action: str, operation: Callable[[Any], T]) -> T:
        where = f"BMC of host {target.host} at {target.address}:{target.port}"
        started = time.monotonic()
        deadline = started + self._timeout_s
        lock = _lock_for(target)
        if not lock.acquire(timeout=self._timeout_s):
            raise BmcUnreachable(
                f"{where}: {action} not sent: an earlier call to this BMC is still waiting "
                f"for an answer after {self._timeout_s:g} s"
            )
        outcome = _Outcome()

        def run() -> None:
            # The lock is released here, not by the caller: a call the caller gave up on
            # keeps the BMC to itself until pyghmi's own timeouts end it.
            try:
                outcome.value = _with_session(target, operation)
            except BaseException as exc:  # noqa: BLE001 - thread boundary: the caller decides
                outcome.error = exc
            finally:
                lock.release()
                outcome.done.set()

        threading.Thread(target=run, name=f"ipmi-{target.host}", daemon=True).start()
        if not outcome.done.wait(timeout=max(0.0, deadline - time.monotonic())):
            log.warning("ipmi %s: %s: no answer within %g s", where, action, self._timeout_s)
            raise BmcUnreachable(f"{where}: no answer to {action} within {self._timeout_s:g} s")
        elapsed = time.monotonic() - started
        if outcome.error is not None:
            error = self._translate(outcome.error, where, action, elapsed)
            log.warning("ipmi %s", error.message)
            raise error from None  # pyghmi's own exception (and its text) stays behind
        log.debug("ipmi %s: %s done in %.3f s", where, action, elapsed)
        result: T = outcome.value
        return result

    def _translate(self, exc: BaseException, where: str, action: str, elapsed: float) -> FenceError:
        from pyghmi.exceptions import PyghmiException

        if isinstance(exc, OSError):
            return BmcUnreachable(f"{where}: {action} failed after {elapsed:.1f} s: network error")
        if not isinstance(exc, PyghmiException):
            return BmcRefused(f"{where}: {action} failed: unexpected {type(exc).__name__} in pyghmi")
        text = str(exc)
        if text in _NO_ANSWER_MESSAGES:
            return BmcUnreachable(f"{where}: no answer to {action} (gave up after {elapsed:.1f} s)")
        if self._refusals is None:
            self._refusals = _known_refusals()
        reason = text if text in self._refusals or _GENERATED_CODE_MESSAGE.fullmatch(text) else None
        if reason is None:
            # Free text from pyghmi could say anything; name only its kind.
            reason = f"unrecognised {type(exc).__name__}"
        return BmcRefused(f"{where}: {action} refused: {reason}")


def _lock_for(target: BmcTarget) -> threading.Lock:
    key = (target.address, target.port)
    with _BMC_LOCKS_GUARD:
        lock = _BMC_LOCKS.get(key)
        if lock is None:
            lock = _BMC_LOCKS[key] = threading.Lock()
        return lock


def _with_session(target: BmcTarget, operation: Callable[[Any], T]) -> T:
    """Log in, run `operation` on the pyghmi Command, log out (even after a failure)."""
    from pyghmi.ipmi.command import Command

    _register_fork_hook()
    ipmi = Command(
        bmc=target.address,
        # bytes, not str: see the module docstring (a second login would hang)
        userid=target.username.encode("utf-8"),
        password=target.password.reveal().encode("utf-8"),
        port=target.port,
    )
    try:
        return operation(ipmi)
    finally:
        _logout(ipmi)


def _logout(ipmi: Any) -> None:
    """Close the session: BMCs have few session slots, and pyghmi would keep it alive."""
    from pyghmi.exceptions import PyghmiException

    try:
        ipmi.ipmi_session.logout()
    except (PyghmiException, OSError):
        # The command's outcome stands; an unanswered logout only leaves a session the
        # BMC will expire.
        log.debug("ipmi logout of %s:%s failed", ipmi.bmc, ipmi.ipmi_session.port)


def _register_fork_hook() -> None:
    global _fork_hook_registered  # noqa: PLW0603 - process-wide, like pyghmi's own state
    with _BMC_LOCKS_GUARD:
        if not _fork_hook_registered:
            os.register_at_fork(after_in_child=_forget_pyghmi_state)
            _fork_hook_registered = True


def _forget_pyghmi_state() -> None:
    """In a freshly forked child: drop pyghmi's inherited I/O state and our BMC locks.

    Runs single-threaded, before the child does anything else. The inherited sockets are
    the parent's too, so the child closes its copies and pyghmi opens new ones.
    """
    global _BMC_LOCKS_GUARD  # noqa: PLW0603 - a lock held by a parent thread at fork stays held
    _BMC_LOCKS_GUARD = threading.Lock()
    _BMC_LOCKS.clear()
    session: Any = sys.modules.get("pyghmi.ipmi.private.session")
    if session is None:
        return
    for sock in list(session.iosockets):
        sock.close()
    session.iothread = None
    session.iothreadready = False
    session.iothreadwaiters = []
    session.iosockets = []
    session.ioqueue = collections.deque()
    session.sessionqueue = collections.deque()
    session.selectdeadline = 0
    session.KEEPALIVE_SESSIONS = threading.RLock()
    session.WAITING_SESSIONS = threading.RLock()
    cls = session.Session
    cls.bmc_handlers = {}
    cls.waiting_sessions = {}
    cls.initting_sessions = {}
    cls.keepalive_sessions = {}
    cls.peeraddr_to_nodes = {}
    cls.iterwaiters = []
    cls.socketpool = {}
    cls.socketchecking = None
