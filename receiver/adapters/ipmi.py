"""`PowerController` over IPMI 2.0 (RMCP+, "lanplus") with pyghmi.

Every BMC call runs pyghmi in a short-lived child process (`python -m
receiver.adapters.ipmi`), because pyghmi's client is not safe to share (measured, see
shared/research/ipmi-notes.md and tests/integration/ipmi):

* Its state is process-wide: one I/O thread, shared sockets, a session table, and an
  event loop that any waiting thread runs for every session. Several threads fencing at
  once, one BMC mute among them, stalled the healthy calls until they timed out.
* It has no per-call timeout: a mute BMC fails after ~4.6 s with an exception whose
  message is `None`, and a session that dies mid-command retries on its own schedule.
  A child process can be killed at our deadline; a thread cannot.
* A child forked after its parent used pyghmi (RQ forks a work horse per job) inherits
  the session table but not the I/O thread, and every call goes unanswered.

So the worker process never imports pyghmi; concurrent fences are concurrent children,
and each call costs a process start (~0.1-0.2 s) on top of the IPMI exchange.

In the child, credentials go to pyghmi as bytes: with str, pyghmi files a session under
a str key and deletes it under a bytes key, and a second login to the same BMC in one
process hangs. The password reaches the child on its stdin, never in argv or the
environment. The child reports an outcome whose reason comes only from pyghmi's fixed
tables of IPMI/RMCP+ codes: no error text here carries pyghmi's free text or a secret.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from receiver.domain.model import BmcTarget, PowerState
from receiver.errors import BmcRefused, BmcUnreachable, FenceError

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 10.0

# Calls to one BMC (address, port) go one at a time within a process: a BMC has few
# session slots, and a power-off must not race the read that follows it.
_BMC_LOCKS: dict[tuple[str, int], threading.Lock] = {}
_BMC_LOCKS_GUARD = threading.Lock()


def _reset_locks_after_fork() -> None:
    # A child forked while another thread of its parent (say the worker's BMC prober) held a
    # BMC's lock would inherit it held forever: every fence of that host would then time out.
    global _BMC_LOCKS_GUARD  # noqa: PLW0603 - the module's own per-process lock table
    _BMC_LOCKS.clear()
    _BMC_LOCKS_GUARD = threading.Lock()


os.register_at_fork(after_in_child=_reset_locks_after_fork)

# What the child may be asked to do: our action name -> pyghmi call.
_ACTIONS = {"power-off": "off", "power-on": "on", "power-state read": "state"}

# pyghmi's texts for "no answer": a login nobody answered carries None; a session that
# stopped answering says one of the others.
_NO_ANSWER_TEXTS = frozenset({"None", "", "Session no longer connected", "timeout", "Timeout"})
_GENERATED_CODE_TEXT = re.compile(
    r"(Unknown code 0x[0-9a-fA-F ]{2} encountered|Unrecognized RMCP code \d+)( in RAKP2| reported in RAKP4)?"
)


@dataclass(frozen=True)
class _Reply:
    """What the child reports on stdout, as one JSON object."""

    outcome: str  # "ok" | "unreachable" | "refused"
    reason: str = ""
    powerstate: str | None = None


class IpmiPower:
    """Hard power control of hosts through their BMCs; implements `PowerController`.

    Each call returns or raises within `timeout_s`: `BmcUnreachable` when the BMC did not
    answer in time, `BmcRefused` when it refused the login or the command.
    """

    def __init__(self, timeout_s: float = DEFAULT_TIMEOUT_S, python: str = sys.executable) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        self._timeout_s = timeout_s
        self._python = python

    def power_off(self, target: BmcTarget) -> None:
        """Ask for a hard power-off; returns once the BMC accepted it. Read the state back."""
        self._call(target, "power-off")

    def power_on(self, target: BmcTarget) -> None:
        self._call(target, "power-on")

    def power_state(self, target: BmcTarget) -> PowerState:
        reply = self._call(target, "power-state read")
        if reply.powerstate == "on":
            return PowerState.ON
        if reply.powerstate == "off":
            return PowerState.OFF
        return PowerState.UNKNOWN

    def _call(self, target: BmcTarget, action: str) -> _Reply:
        where = f"BMC of host {target.host} at {target.address}:{target.port}"
        started = time.monotonic()
        lock = _lock_for(target)
        if not lock.acquire(timeout=self._timeout_s):
            raise BmcUnreachable(
                f"{where}: {action} not sent: earlier calls to this BMC took the whole {self._timeout_s:g} s"
            )
        try:
            remaining = self._timeout_s - (time.monotonic() - started)
            reply = self._run_child(target, action, where, remaining)
        finally:
            lock.release()
        elapsed = time.monotonic() - started
        if reply.outcome == "ok":
            log.debug("ipmi %s: %s done in %.3f s", where, action, elapsed)
            return reply
        error: FenceError
        if reply.outcome == "unreachable":
            error = BmcUnreachable(f"{where}: no answer to {action} (gave up after {elapsed:.1f} s)")
        else:
            error = BmcRefused(f"{where}: {action} refused: {reply.reason}")
        log.warning("ipmi %s", error.message)
        raise error

    def _run_child(self, target: BmcTarget, action: str, where: str, timeout_s: float) -> _Reply:
        request = {
            "action": _ACTIONS[action],
            "address": target.address,
            "port": target.port,
            "username": target.username,
            "password": target.password.reveal(),
        }
        child = subprocess.Popen(  # noqa: S603 - our own module, arguments fixed here
            [self._python, "-m", __name__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_child_environment(),
        )
        try:
            out, err = child.communicate(json.dumps(request).encode("utf-8"), timeout=max(timeout_s, 0.001))
        except subprocess.TimeoutExpired:
            child.kill()
            child.communicate()
            log.warning("ipmi %s: %s: no answer within %g s", where, action, self._timeout_s)
            raise BmcUnreachable(f"{where}: no answer to {action} within {self._timeout_s:g} s") from None
        try:
            fields = json.loads(out)
            return _Reply(fields["outcome"], fields.get("reason", ""), fields.get("powerstate"))
        except (ValueError, KeyError, TypeError):
            # The child died before answering (it prints only JSON): say so, without its
            # output, which is not ours to vouch for.
            log.error(
                "ipmi %s: %s: helper process exited %d without a reply", where, action, child.returncode
            )
            log.debug("ipmi helper stderr (%d bytes withheld)", len(err))
            raise BmcRefused(
                f"{where}: {action} failed: IPMI helper process exited {child.returncode}"
            ) from None


def _lock_for(target: BmcTarget) -> threading.Lock:
    key = (target.address, target.port)
    with _BMC_LOCKS_GUARD:
        lock = _BMC_LOCKS.get(key)
        if lock is None:
            lock = _BMC_LOCKS[key] = threading.Lock()
        return lock


def _child_environment() -> dict[str, str]:
    """Our environment, plus the directory holding `receiver` (it may not be installed)."""
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[2])
    paths = [package_root, *(p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p)]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env


# ---- the child: one IPMI call with pyghmi, then exit --------------------------------


def _known_refusals() -> frozenset[str]:
    """Every refusal text pyghmi builds from a code table: safe to repeat verbatim."""
    from pyghmi.ipmi.private import constants

    texts = {"Incorrect password provided", "Invalid RAKP4 integrity code (wrong Kg?)"}
    texts.update(constants.ipmi_completion_codes.values())
    for codes in constants.command_completion_codes.values():
        texts.update(codes.values())
    for rmcp_text in constants.rmcp_codes.values():
        texts.update({rmcp_text, f"{rmcp_text} in RAKP2", f"{rmcp_text} reported in RAKP4"})
    return frozenset(texts)


def classify(error: BaseException) -> _Reply:
    """Turn what pyghmi raised into an outcome and a reason fit to repeat."""
    from pyghmi.exceptions import PyghmiException

    if isinstance(error, OSError):
        return _Reply("unreachable", "network error")
    if not isinstance(error, PyghmiException):
        return _Reply("refused", f"unexpected {type(error).__name__} in pyghmi")
    text = str(error)
    if text in _NO_ANSWER_TEXTS:
        return _Reply("unreachable", "no answer")
    if text in _known_refusals() or _GENERATED_CODE_TEXT.fullmatch(text):
        return _Reply("refused", text)
    # Free text from pyghmi could say anything; name only its kind.
    return _Reply("refused", f"unrecognised {type(error).__name__}")


def _perform(request: dict[str, Any]) -> _Reply:
    from pyghmi.exceptions import PyghmiException
    from pyghmi.ipmi.command import Command

    try:
        ipmi = Command(
            bmc=request["address"],
            # bytes, not str: see the module docstring
            userid=request["username"].encode("utf-8"),
            password=request["password"].encode("utf-8"),
            port=int(request["port"]),
        )
        try:
            if request["action"] == "state":
                return _Reply("ok", powerstate=ipmi.get_power().get("powerstate"))
            # wait=False: the caller reads the state back itself, on its own deadline.
            ipmi.set_power(request["action"], wait=False)
            return _Reply("ok")
        finally:
            # Free the BMC's session slot; the outcome above stands either way.
            with contextlib.suppress(PyghmiException, OSError):
                ipmi.ipmi_session.logout()
    except Exception as error:  # noqa: BLE001 - process boundary: everything becomes a reply
        return classify(error)


def main() -> None:
    """Child entry: read one request (JSON) on stdin, write one reply (JSON) on stdout."""
    # pyghmi print()s now and then; keep stdout for the reply alone.
    reply_fd = os.dup(1)
    os.dup2(2, 1)
    request = json.loads(sys.stdin.buffer.read())
    reply = _perform(request)
    body = {"outcome": reply.outcome, "reason": reply.reason, "powerstate": reply.powerstate}
    os.write(reply_fd, json.dumps(body).encode("utf-8"))
    sys.stderr.flush()
    # pyghmi's I/O thread and sessions must not delay the exit: the reply is written.
    os._exit(0)


if __name__ == "__main__":
    main()
