"""Host aggregates as Nova 34's os-aggregates has them: the rules, part of the lab's `Cloud`
(the routes are `receiver.lab.aggregate_api`'s). Checked against the real test bed: create (200, 409 on a
duplicate name), show and list (hosts and metadata; uuid from 2.41), add_host (404 for an
unknown host, then for an unknown aggregate; 409 when the host sits in an aggregate of another
availability zone, when its instances would change zone, and when it is already a member),
remove_host (404 "Cannot remove host ... in aggregate ..." for a host that is not a member),
delete (400 while hosts remain). An id that is not an integer is a 400.

Not modelled: set_metadata, aggregate images, the zone check when a host leaves, and any
effect of aggregates on the lab's scheduler.
"""

from __future__ import annotations

from receiver.lab import model
from receiver.lab.model import AggregateRecord, NovaError
from receiver.lab.state import CloudState


class HostAggregates(CloudState):
    """os-aggregates' rules, in Nova's order of checks and with its messages."""

    def create_aggregate(self, name: str, availability_zone: str | None) -> AggregateRecord:
        with self.lock:
            name = name.strip()
            if any(a.name == name for a in self.aggregates.values()):
                raise NovaError(409, f"Aggregate {name} already exists.")
            record = AggregateRecord(
                id=next(self.aggregate_ids), uuid=model.new_uuid(), name=name, created_at=self.clock()
            )
            if availability_zone:
                record.metadata["availability_zone"] = availability_zone.strip()
            self.aggregates[record.id] = record
            return record

    def aggregate(self, aggregate_id: str) -> AggregateRecord:
        with self.lock:
            record = self.aggregates.get(_integer(aggregate_id))
            if record is None:
                raise NovaError(404, f"Aggregate {aggregate_id} could not be found.")
            return record

    def delete_aggregate(self, aggregate_id: str) -> None:
        with self.lock:
            record = self.aggregate(aggregate_id)
            if record.hosts:
                raise NovaError(
                    400,
                    f"Cannot remove host from aggregate {record.id}. Reason: Host aggregate is not empty.",
                )
            del self.aggregates[record.id]

    def add_aggregate_host(self, aggregate_id: str, host: str) -> AggregateRecord:
        with self.lock:
            _integer(aggregate_id)
            if host not in self.hosts:
                raise NovaError(404, f"Compute host {host} could not be found.")
            record = self.aggregate(aggregate_id)
            zone = record.availability_zone
            mine = [a for a in self.aggregates.values() if host in a.hosts]
            if zone is not None:
                others = [a.availability_zone for a in mine if a.id != record.id and a.availability_zone]
                conflicting = [z for z in others if z != zone]
                if conflicting:
                    reason = f"One or more hosts already in availability zone(s) {conflicting}"
                    raise NovaError(409, f"Cannot add host to aggregate {record.id}. Reason: {reason}.")
                current = next((a.availability_zone for a in mine if a.availability_zone), None)
                instances = len(self.servers_by_host[host])
                if instances and current != zone:
                    reason = (
                        f"The host cannot be added to the aggregate as the availability zone of the host "
                        f"would change from '{current}' to '{zone}' but the host already has {instances} "
                        "instance(s). Changing the AZ of an existing instance is not supported by this "
                        "action. Move the instances away from this host then try again. If you need to "
                        "move the instances between AZs then you can use shelve_offload and unshelve to "
                        "achieve this."
                    )
                    raise NovaError(409, f"Cannot add host to aggregate {record.id}. Reason: {reason}.")
            if host in record.hosts:
                raise NovaError(409, f"Aggregate {record.id} already has host {host}.")
            record.hosts.append(host)
            return record

    def remove_aggregate_host(self, aggregate_id: str, host: str) -> AggregateRecord:
        with self.lock:
            _integer(aggregate_id)
            record = self.aggregates.get(int(aggregate_id))
            if host not in self.hosts or record is None or host not in record.hosts:
                raise NovaError(404, f"Cannot remove host {host} in aggregate {aggregate_id}")
            record.hosts.remove(host)
            return record


def _integer(aggregate_id: str) -> int:
    try:
        return int(aggregate_id)
    except ValueError:
        raise NovaError(400, "Invalid input received: id must be an integer") from None
