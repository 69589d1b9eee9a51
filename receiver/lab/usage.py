"""Where servers' resources are counted: Placement's allocations and each host's resource
tracker (the figures os-hypervisors reports), as Nova 34 keeps them.

A server counts on its host; an evacuating one also on its destination from the moment the
conductor chose it (Placement's allocation) until it lands there or fails. A host's figures
are written by its own nova-compute only: when a server leaves a host whose compute is not
running (the usual case of an evacuation), that host keeps counting it until its compute
runs again, as on the real test bed, where a dead host's os-hypervisors figures stay as they
were until its nova-compute restarts.
"""

from __future__ import annotations

from receiver.lab import model
from receiver.lab.model import Host, Instance, Usage
from receiver.lab.scheduler import Demand


def demand(server: Instance) -> Demand:
    """What the scheduler must find room for: the server's usage, plus its PCI request."""
    usage = server.usage
    alias = server.flavor.extra_specs.get("pci_passthrough:alias")
    return Demand(usage.vcpus, usage.memory_mb, usage.disk_gb, pci_alias=alias or None)


class ResourceTracking:
    """The part of the lab cloud that keeps host figures; `CloudState` fills these in."""

    hosts: dict[str, Host]
    servers: dict[str, Instance]
    servers_by_host: dict[str, dict[str, None]]  # ordered sets of server ids
    _claims: dict[str, str]  # Placement's allocation of an evacuating server: id -> destination

    def _place(self, server: Instance, destination: str) -> None:
        """Move `server` (and its resource usage, taking over any claim it held) to `destination`."""
        self._release_claim(server)
        source = server.host
        if source is not None:
            self.servers_by_host[source].pop(server.id, None)
            self._leave(self.hosts[source], server.usage)
        server.host = destination
        self.servers_by_host[destination][server.id] = None
        _count(self.hosts[destination], server.usage, +1)
        for name in (source, destination):
            if name is not None:
                self._recount(name)

    def _remove(self, server: Instance) -> None:
        """A deleted server leaves its host (and any claim)."""
        self._release_claim(server)
        if server.host is not None:
            self.servers_by_host[server.host].pop(server.id, None)
            self._leave(self.hosts[server.host], server.usage)
            self._recount(server.host)

    def _claim(self, server: Instance, destination: str) -> None:
        _count(self.hosts[destination], server.usage, +1)
        self._claims[server.id] = destination

    def _release_claim(self, server: Instance) -> str | None:
        """Drop the server's allocation on a destination it has not moved to; returns where it was."""
        destination = self._claims.pop(server.id, None)
        if destination is not None:
            _count(self.hosts[destination], server.usage, -1)
        return destination

    @staticmethod
    def _leave(host: Host, usage: Usage) -> None:
        if host.working:
            _count(host, usage, -1)
        else:
            host.unreleased.append(usage)

    @staticmethod
    def _release_unreleased(host: Host) -> None:
        """The host's nova-compute runs again: its resource tracker counts what is there now."""
        for usage in host.unreleased:
            _count(host, usage, -1)
        host.unreleased.clear()

    def _recount(self, host_name: str | None) -> None:
        if host_name is None:
            return
        ids = self.servers_by_host[host_name]
        self.hosts[host_name].running_vms = sum(
            1 for i in ids if self.servers[i].power_state == model.RUNNING
        )


def _count(host: Host, usage: Usage, sign: int) -> None:
    host.vcpus_used += sign * usage.vcpus
    host.memory_mb_used += sign * usage.memory_mb
    host.local_gb_used += sign * usage.disk_gb
