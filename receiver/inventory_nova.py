"""An inventory host must be a host Nova runs nova-compute on, as Masakari requires of a
host it is given (LP#1800073: it looks in os-services, not hypervisors).

Without the check a misspelt or unqualified name ("node01" for "node01.dc1") is accepted
and shows only the night that host fails, when Lazarus finds no service to force down.
Checked where hosts are named: create, rename, `inventory apply`; the setting
`nova.require_compute_hosts` turns it off (hosts registered before their nova-compute).
"""

from __future__ import annotations

from collections.abc import Collection

from receiver.errors import UnknownReference
from receiver.ports import Compute
from receiver.workflow.retry import retry_transient


def unknown_to_nova(compute: Compute, names: Collection[str]) -> list[str]:
    """The `names` Nova has no nova-compute service for (one listing, however many names)."""
    if not names:
        return []
    known = {s.host for s in retry_transient(compute.compute_services)}
    return sorted(n for n in set(names) if n not in known)


def require_compute_hosts(compute: Compute, names: Collection[str], field: str = "name") -> None:
    """UnknownReference naming `field` when Nova does not know a host; ComputeError when Nova
    cannot be asked (retryable: nothing was written)."""
    unknown = unknown_to_nova(compute, names)
    if unknown:
        # Masakari's words (ComputeNotFoundByName), so its clients' users recognise them.
        services = ", ".join(unknown)
        raise UnknownReference(field, f"Compute service of {services} could not be found.")
