"""Serve a small `BmcFleet` in its own process, for the IPMI tests.

The tests' pyghmi client keeps process-global session state; the simulator is built on
the same library, so it runs here, in a separate process, and the two never mix.

    python fleet_process.py --username U --password-file F HOST[=FAULT] ...

Prints one JSON line {"HOST": PORT, ...} once every BMC listens, then serves until its
standard input closes (so it also stops when the test process dies).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from pathlib import Path

from receiver.lab.bmc import BmcFault, BmcFleet


class MemoryPower:
    """Hosts start ON; the state is only this process's memory."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._on: dict[str, bool] = {}

    def is_on(self, host: str) -> bool:
        with self._lock:
            return self._on.get(host, True)

    def set_power(self, host: str, on: bool) -> None:
        with self._lock:
            self._on[host] = on


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--username", required=True)
    parser.add_argument("--password-file", required=True, type=Path)
    parser.add_argument("hosts", nargs="+", help="HOST or HOST=FAULT")
    args = parser.parse_args()
    password = args.password_file.read_text(encoding="utf-8")
    fleet = BmcFleet(MemoryPower(), args.username, password)
    ports = {}
    for spec in args.hosts:
        host, _, fault = spec.partition("=")
        ports[host] = fleet.add(host)
        fleet.set_fault(host, BmcFault(fault or "none"))
    fleet.start()
    print(json.dumps(ports), flush=True)
    sys.stdin.read()
    fleet.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
