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
    # The real Nova test bed's flavor (nova-lab/README.md), so suites written for it run here too.
    Flavor(id="ebcc45e7-ff4b-42b3-b34b-9fe6911a9686", name="fake.small", vcpus=1, ram=512, disk=1),
)
HA_METADATA = {"HA_Enabled": "True"}


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
    for name in hosts:
        cloud.add_host(name, options.host_vcpus, options.host_memory_mb, options.host_disk_gb)
    for index, host in enumerate(hosts):
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
