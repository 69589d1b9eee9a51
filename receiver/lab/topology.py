"""What a lab contains: its options and the cloud they build (hosts, flavors, servers)."""

from __future__ import annotations

from dataclasses import dataclass

from receiver.lab.cloud import Cloud, CloudSettings
from receiver.lab.model import Flavor

DEMO_HOSTS = ("node-01", "node-02", "node-03")
FLAVORS = (
    Flavor(id="1", name="m1.tiny", vcpus=1, ram=512, disk=1),
    Flavor(id="2", name="m1.small", vcpus=1, ram=2048, disk=20),
    Flavor(id="3", name="m1.medium", vcpus=2, ram=4096, disk=40),
    Flavor(id="4", name="m1.large", vcpus=4, ram=8192, disk=80),
    # Half a default lab host's memory: two of them fill one (the host's 512 MB reserve aside).
    Flavor(id="5", name="lab.huge", vcpus=16, ram=65280, disk=200),
    # Needs a passthrough device (Nova's PciPassthroughFilter); no lab host has one.
    Flavor(
        id="6", name="lab.gpu", vcpus=2, ram=4096, disk=40, extra_specs={"pci_passthrough:alias": "gpu:1"}
    ),
    # Dedicated (pinned) CPUs; the lab's scheduler counts them as vCPUs.
    Flavor(id="7", name="lab.pinned", vcpus=2, ram=4096, disk=40, extra_specs={"hw:cpu_policy": "dedicated"}),
    # The real Nova test bed's flavor (nova-lab/README.md), so suites written for it run here too.
    Flavor(id="ebcc45e7-ff4b-42b3-b34b-9fe6911a9686", name="fake.small", vcpus=1, ram=512, disk=1),
)
HA_METADATA = {"HA_Enabled": "True"}
SPARE_REASON = "reserved spare"  # the disabled_reason of a spare's nova-compute service
RECOVERY_METHODS = ("auto", "reserved_host", "auto_priority", "rh_priority")
CAPACITY_KEYS = ("vcpus", "memory_mb", "disk_gb")


@dataclass(frozen=True)
class LabOptions:
    """Everything `lazarus lab serve` can be told. Defaults give the demo lab.

    hosts / host_count: explicit host names, or N hosts named node-01.. (zero-padded to N's width).
    servers_per_host: None gives the demo layout (4 servers on the first host, one of them SHUTOFF,
        2 on each other host); M gives M servers on every host (the 4th of every 4 SHUTOFF, the 3rd of every 5
        without HA_Enabled metadata).
    bmc: run one IPMI BMC simulator per host (UDP). bmc_hosts limits which hosts get one; large labs
        (hundreds of hosts) should list only the hosts a test fences, each BMC is a socket.
    token: the X-Auth-Token of the compute and control APIs; None makes a random one.
    spares: reserved spares: their nova-compute starts disabled (reason "reserved spare"), they get
        no generated servers, and the generated inventory marks them `reserved: true`.
    recovery_method, shared_storage: the generated inventory's segment `lab` (lab servers are
        image-backed: without shared_storage a recovery would refuse them as local-disk).
    host_capacity: per-host sizes instead of host_vcpus / host_memory_mb / host_disk_gb, as
        "HOST:KEY=N[:KEY=N...]" with KEY vcpus, memory_mb or disk_gb, e.g. "spare-01:memory_mb=8704".
    """

    hosts: tuple[str, ...] | None = None
    host_count: int | None = None
    servers_per_host: int | None = None
    service_down_time: float = 10.0
    report_interval: float = 1.0
    evacuate_delay: float = 1.0
    action_delay: float = 0.3
    port: int = 0
    token: str | None = None
    bmc: bool = True
    bmc_hosts: tuple[str, ...] | None = None
    bmc_username: str = "admin"
    host_vcpus: int = 32
    host_memory_mb: int = 131072
    host_disk_gb: int = 2000
    flavor: str = "m1.small"
    log_requests: bool = False
    spares: tuple[str, ...] = ()
    recovery_method: str = "auto"
    shared_storage: bool = True
    host_capacity: tuple[str, ...] = ()

    def host_names(self) -> tuple[str, ...]:
        if self.hosts is not None and self.host_count is not None:
            raise ValueError("give either hosts or host_count, not both")
        if self.host_count is not None:
            if self.host_count < 1:
                raise ValueError("host_count must be >= 1")
            width = max(2, len(str(self.host_count)))
            return tuple(f"node-{i:0{width}d}" for i in range(1, self.host_count + 1))
        names = self.hosts if self.hosts is not None else DEMO_HOSTS
        if not names or len(set(names)) != len(names) or not all(names):
            raise ValueError("hosts must be distinct, non-empty names")
        return tuple(names)

    def spare_names(self) -> tuple[str, ...]:
        unknown = sorted(set(self.spares) - set(self.host_names()))
        if unknown:
            raise ValueError(f"spares names unknown hosts: {', '.join(unknown)}")
        if self.recovery_method not in RECOVERY_METHODS:
            raise ValueError(f"recovery_method must be one of {', '.join(RECOVERY_METHODS)}")
        return tuple(self.spares)

    def capacity(self, host: str) -> dict[str, int]:
        """The host's vcpus, memory_mb and disk_gb: the defaults, then its host_capacity entry."""
        sizes = {"vcpus": self.host_vcpus, "memory_mb": self.host_memory_mb, "disk_gb": self.host_disk_gb}
        return sizes | self.capacity_overrides().get(host, {})

    def capacity_overrides(self) -> dict[str, dict[str, int]]:
        names = set(self.host_names())
        overrides: dict[str, dict[str, int]] = {}
        for entry in self.host_capacity:
            host, *pairs = entry.split(":")
            if host not in names:
                raise ValueError(f"host_capacity names an unknown host: {host}")
            for pair in pairs:
                key, _, value = pair.partition("=")
                if key not in CAPACITY_KEYS or not value.isdigit() or int(value) < 1:
                    raise ValueError(
                        f"host_capacity {entry!r}: give KEY=N with KEY in {', '.join(CAPACITY_KEYS)}"
                    )
                overrides.setdefault(host, {})[key] = int(value)
        return overrides

    def bmc_host_names(self) -> tuple[str, ...]:
        if not self.bmc:
            return ()
        names = self.host_names()
        if self.bmc_hosts is None:
            return names
        unknown = sorted(set(self.bmc_hosts) - set(names))
        if unknown:
            raise ValueError(f"bmc_hosts names unknown hosts: {', '.join(unknown)}")
        return tuple(self.bmc_hosts)


def build_cloud(options: LabOptions) -> Cloud:
    settings = CloudSettings(
        service_down_time=options.service_down_time,
        report_interval=options.report_interval,
        evacuate_delay=options.evacuate_delay,
        action_delay=options.action_delay,
    )
    cloud = Cloud(settings)
    for flavor in FLAVORS:
        cloud.add_flavor(flavor)
    hosts = options.host_names()
    spares = options.spare_names()
    for name in hosts:
        size = options.capacity(name)
        cloud.add_host(name, size["vcpus"], size["memory_mb"], size["disk_gb"])
    for name in spares:
        cloud.update_service(cloud.hosts[name].service_id, status="disabled", disabled_reason=SPARE_REASON)
    for index, host in enumerate(hosts):
        if host in spares:
            continue  # a reserved spare is kept empty
        count = options.servers_per_host
        if count is None:
            count = 4 if index == 0 else 2
        for number in range(count):
            cloud.add_server(
                f"{host}-vm-{number + 1:02d}",
                host,
                options.flavor,
                stopped=number % 4 == 3,
                metadata={} if number % 5 == 2 else dict(HA_METADATA),
            )
    return cloud
