"""IPMI BMC simulators for the lab: real RMCP+ (IPMI 2.0 "lanplus") over UDP on 127.0.0.1.

One BMC per host, each on its own UDP port, all served from one process by pyghmi's BMC
server. The host's power state is not kept here: every read and write goes through a
`HostPower`, so a BMC always reports what the lab's host really is.

pyghmi's server needs one fix to serve pyghmi's own client (see
shared/research/ipmi-notes.md): it answers every RMCP+ open-session proposal with
"OK, cipher suite 3", whatever was proposed. The client proposes suite 17 first and then
crashes in RAKP2. A suite-3-only BMC must answer any other proposal with RMCP+ status
0x11 ("no cipher suite match"); the client then retries with suite 3.

Standalone (for the real-Nova test tier, beside a BMC-less test bed):

    python -m receiver.lab.bmc --host node-01 --port 0 --username admin --password-file F \
        --on-power-off "nodectl.sh kill node-01" --on-power-on "nodectl.sh start node-01" \
        --ready-file F

keeps the power state in memory (starting ON), runs the hook commands (without a shell)
on each transition and writes the bound UDP port into the ready file once listening.

Each BMC counts what it receives (`BmcFleet.request_counts()`): every RMCP/IPMI message,
session setup included and even while muted, and among its commands the power reads (Get
Chassis Status) and power changes (Chassis Control), so tests can prove a flow never
touched a BMC.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)

# IPMI completion codes (IPMI 2.0 spec, table 5-2).
CC_OK = 0x00
CC_NOT_IN_PRESENT_STATE = 0xD5  # "command not supported in present state"
CC_UNSPECIFIED = 0xFF
# RMCP+ status codes (IPMI 2.0 spec, table 13-15).
RMCP_UNAUTHORIZED_NAME = 0x0D
RMCP_NO_CIPHER_SUITE_MATCH = 0x11
# The only algorithms pyghmi's server implements (cipher suite 3):
# RAKP-HMAC-SHA1, HMAC-SHA1-96, AES-CBC-128.
_SUITE_3 = (1, 1, 1)
# The chassis commands that read and change power (IPMI 2.0 spec, table G-1).
NETFN_CHASSIS = 0x00
CMD_GET_CHASSIS_STATUS = 0x01
CMD_CHASSIS_CONTROL = 0x02
REQUEST_COUNTERS = ("requests", "power_reads", "power_changes")
# How long one event-loop turn may block; bounds how quickly stop() is noticed.
_LOOP_TURN_S = 0.5
_HOOK_TIMEOUT_S = 60.0

# pyghmi's event loop is process-global; two fleets in one process take turns on it.
_EVENT_LOOP_LOCK = threading.Lock()
_RELEASE_LOCK = threading.Lock()
_placeholder_socket: socket.socket | None = None


class HostPower(Protocol):
    """The lab's view of a host's power. Called from the BMC serving thread."""

    def is_on(self, host: str) -> bool: ...

    def set_power(self, host: str, on: bool) -> None: ...


class BmcFault(StrEnum):
    NONE = "none"
    MUTE = "mute"  # never answers anything: every packet is dropped
    REFUSE = "refuse"  # login and power status work; power off/on get cc 0xd5
    STUCK_ON = "stuck_on"  # power-off answered cc 0, but the host stays ON


def _make_bmc_classes() -> tuple[type[Any], type[Any]]:
    """Build the pyghmi subclasses lazily: importing this module must not import pyghmi
    (whose import starts nothing, but keeps `receiver.lab` light)."""
    from pyghmi.ipmi import bmc as pyghmi_bmc
    from pyghmi.ipmi.private import constants, serversession

    class LabServerSession(serversession.ServerSession):  # type: ignore[misc]
        """One client's RMCP+ session with a `LabBmc`, with suite negotiation done right."""

        def create_open_session_response(self, request: bytearray) -> bytearray:
            proposal = (request[12], request[20], request[28])
            if proposal != _SUITE_3:
                # As a real suite-3-only BMC does; the client falls back to suite 3.
                self.clientsessionid = request[4:8]
                return bytearray([request[0], RMCP_NO_CIPHER_SUITE_MATCH, 0, 0]) + request[4:8]
            response: bytearray = super().create_open_session_response(request)
            return response

        def _got_rakp1(self, data: bytearray) -> None:
            username = bytes(data[28:]).decode("utf-8", "replace")
            if data[27] == 0 or self.authdata.get(username) is None:
                # pyghmi's server stays silent here, so a wrong user name would look like a
                # dead BMC; a real BMC refuses it in RAKP2.
                refusal = bytearray([data[0], RMCP_UNAUTHORIZED_NAME, 0, 0]) + self.clientsessionid
                self.send_payload(refusal, constants.payload_types["rakp2"], retry=False)
                return
            super()._got_rakp1(data)

        def _handle_ipmi_packet(self, data: bytearray, sockaddr: Any = None, qent: Any = None) -> Any:
            self.bmc.count("requests")
            if self.bmc.fault is BmcFault.MUTE:
                return None
            return super()._handle_ipmi_packet(data, sockaddr=sockaddr, qent=qent)

    class LabBmc(pyghmi_bmc.Bmc):  # type: ignore[misc]
        """The BMC of one lab host."""

        def __init__(self, host: str, power: HostPower, authdata: dict[str, str], address: str, port: int):
            super().__init__(authdata, port=port, address=address)
            # pyghmi routes packets by the bound port; with port 0 it must learn the real one.
            self.port = self.serversocket.getsockname()[1]
            self.host = host
            self.power = power
            self.fault = BmcFault.NONE
            self.counts = dict.fromkeys(REQUEST_COUNTERS, 0)
            self._counts_lock = threading.Lock()

        def count(self, counter: str) -> None:
            with self._counts_lock:
                self.counts[counter] += 1

        def request_counts(self) -> dict[str, int]:
            with self._counts_lock:
                return dict(self.counts)

        def sessionless_data(self, data: bytes, sockaddr: Any) -> None:
            self.count("requests")
            if self.fault is BmcFault.MUTE:
                return
            is_open_session_request = (
                len(data) >= 22
                and data[0] == 6
                and data[2:4] == b"\xff\x07"
                and data[4] == 6
                and data[5] == constants.payload_types["rmcpplusopenreq"]
            )
            if is_open_session_request:
                LabServerSession(
                    self.authdata,
                    self.kg,
                    sockaddr,
                    self.serversocket,
                    bytearray(data[16:]),
                    self.uuid,
                    bmc=self,
                )
                return
            super().sessionless_data(data, sockaddr)

        def handle_raw_request(self, request: dict[str, Any], session: Any) -> Any:
            if request["netfn"] == NETFN_CHASSIS and request["command"] == CMD_GET_CHASSIS_STATUS:
                self.count("power_reads")
            elif request["netfn"] == NETFN_CHASSIS and request["command"] == CMD_CHASSIS_CONTROL:
                self.count("power_changes")
            return super().handle_raw_request(request, session)

        def get_power_state(self) -> str:
            if self.fault is BmcFault.STUCK_ON:
                return "on"
            return "on" if self.power.is_on(self.host) else "off"

        def power_off(self) -> int:
            return self._set_power(on=False)

        def power_on(self) -> int:
            return self._set_power(on=True)

        def _set_power(self, on: bool) -> int:
            wanted = "on" if on else "off"
            if self.fault is BmcFault.REFUSE:
                log.info("bmc %s: refused power %s (fault %s)", self.host, wanted, self.fault)
                return CC_NOT_IN_PRESENT_STATE
            if self.fault is BmcFault.STUCK_ON:
                log.info("bmc %s: accepted power %s but stays on (fault %s)", self.host, wanted, self.fault)
                return CC_OK
            self.power.set_power(self.host, on)
            log.info("bmc %s: power %s", self.host, wanted)
            return CC_OK

        def get_system_guid(self) -> Any:
            return self.uuid

    return LabBmc, LabServerSession


class BmcFleet:
    """The BMCs of many lab hosts, served by background threads of this process."""

    def __init__(self, power: HostPower, username: str, password: str, address: str = "127.0.0.1") -> None:
        self._power = power
        self._authdata = {username: password}
        self._address = address
        self._bmcs: dict[str, Any] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._bmc_class: type[Any] | None = None

    def add(self, host: str, port: int = 0) -> int:
        """Bind host's BMC to a UDP port (0 = a free one) and return the port."""
        if host in self._bmcs:
            raise ValueError(f"host {host!r} already has a BMC")
        if self._bmc_class is None:
            self._bmc_class, _ = _make_bmc_classes()
        bmc = self._bmc_class(host, self._power, self._authdata, self._address, port)
        self._bmcs[host] = bmc
        bound: int = bmc.port
        return bound

    def port(self, host: str) -> int:
        bound: int = self._bmcs[host].port
        return bound

    def set_fault(self, host: str, fault: BmcFault) -> None:
        self._bmcs[host].fault = BmcFault(fault)

    def request_counts(self) -> dict[str, dict[str, int]]:
        """Per host: RMCP/IPMI messages received ("requests"), power reads and power changes."""
        return {host: bmc.request_counts() for host, bmc in list(self._bmcs.items())}

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, name="lab-bmc-fleet", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and release every UDP port."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._bmcs:
            _release_sockets([bmc.serversocket for bmc in self._bmcs.values()])
            self._bmcs.clear()

    def _serve(self) -> None:
        import pyghmi.ipmi.private.session as ipmisession

        while not self._stop.is_set():
            with _EVENT_LOOP_LOCK:
                ipmisession.Session.wait_for_rsp(timeout=_LOOP_TURN_S)


def _release_sockets(sockets: list[socket.socket]) -> None:
    """Take the sockets out of pyghmi's shared I/O thread, forget their sessions, close them.

    pyghmi's I/O thread select()s over a global socket list, and wakes itself by sending
    a byte to the list's first socket. Closing a socket it still watches would kill that
    thread (EBADF) and with it every BMC and client of the process; an empty list would
    leave it asleep for 300 s. So a never-closed placeholder socket stays in the list,
    our sockets leave it, and they are closed only after the I/O thread has begun a fresh
    select() without them (pyghmi's io-wait event fires only after such a turn).
    """
    import pyghmi.ipmi.private.session as ipmisession

    global _placeholder_socket  # noqa: PLW0603 - one per process, like pyghmi's I/O thread
    with _RELEASE_LOCK:
        if _placeholder_socket is None:
            _placeholder_socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            _placeholder_socket.bind(("127.0.0.1", 0))
            ipmisession.iosockets.append(_placeholder_socket)
            ipmisession._io_wait(0.01)  # the I/O thread now watches the placeholder too
        for sock in sockets:
            ipmisession.Session.bmc_handlers.pop(sock, None)
            if sock in ipmisession.iosockets:
                ipmisession.iosockets.remove(sock)
        _forget_sessions(ipmisession.Session.bmc_handlers, {sock.getsockname()[1] for sock in sockets})
        ipmisession._io_wait(0.01)
        for sock in sockets:
            sock.close()


def _forget_sessions(handlers: dict[Any, Any], ports: set[int]) -> None:
    """Drop client sessions of released BMCs: a later BMC bound to the same port must not
    inherit them."""
    for client, by_port in list(handlers.items()):
        if isinstance(client, tuple) and isinstance(by_port, dict):
            for port in ports & set(by_port):
                del by_port[port]
            if not by_port:
                del handlers[client]


class _MemoryPower:
    """Standalone mode's power: in memory, starting ON, running a hook on each change."""

    def __init__(self, on_power_off: Sequence[str] | None, on_power_on: Sequence[str] | None) -> None:
        self._on: dict[str, bool] = {}
        self._hooks = {False: on_power_off, True: on_power_on}

    def is_on(self, host: str) -> bool:
        return self._on.get(host, True)

    def set_power(self, host: str, on: bool) -> None:
        if self.is_on(host) == on:
            return  # a retransmitted command must not run the hook twice
        hook = self._hooks[on]
        if hook:
            # The command comes from the operator's own command line, never from the network.
            result = subprocess.run(list(hook), check=False, timeout=_HOOK_TIMEOUT_S, capture_output=True)
            if result.returncode != 0:
                # The simulated power still changes: the hook reports the change to the
                # test bed (e.g. kills nova-compute), it is not the power itself. A host
                # whose nova-compute is already dead is "off" all the same.
                log.warning(
                    "bmc %s: hook %s exited %d: %s",
                    host,
                    hook[0],
                    result.returncode,
                    result.stderr.decode("utf-8", "replace").strip()[-500:],
                )
        self._on[host] = on


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m receiver.lab.bmc", description=__doc__.splitlines()[0])
    parser.add_argument("--host", required=True, help="host name this BMC controls")
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="UDP port, 0 = a free one")
    parser.add_argument("--username", required=True)
    parser.add_argument("--password-file", required=True, type=Path)
    parser.add_argument("--on-power-off", default="", help="command run (no shell) when powered off")
    parser.add_argument("--on-power-on", default="", help="command run (no shell) when powered on")
    parser.add_argument("--fault", default=BmcFault.NONE.value, choices=[f.value for f in BmcFault])
    parser.add_argument("--ready-file", type=Path, help="the bound port is written here once listening")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    password = args.password_file.read_text(encoding="utf-8").rstrip("\r\n")
    power = _MemoryPower(shlex.split(args.on_power_off) or None, shlex.split(args.on_power_on) or None)
    fleet = BmcFleet(power, args.username, password, address=args.address)
    port = fleet.add(args.host, args.port)
    fleet.set_fault(args.host, BmcFault(args.fault))
    stopped = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopped.set())
    fleet.start()
    if args.ready_file:
        # Write then rename, so a reader never sees a half-written port.
        partial = args.ready_file.with_name(args.ready_file.name + ".partial")
        partial.write_text(f"{port}\n", encoding="utf-8")
        os.replace(partial, args.ready_file)
    log.info("bmc %s listening on %s:%d (udp)", args.host, args.address, port)
    stopped.wait()
    fleet.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
