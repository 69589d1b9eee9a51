"""What the exporters on each lab host would answer, so that a real Prometheus can watch the lab.

Served under `/exporters` on the lab's HTTP port, without the lab's token (exporters have none):

    GET /exporters/<host>/node/metrics      node-exporter: build info and the systemd collector's
                                            node_systemd_unit_state for nova-compute and libvirtd
    GET /exporters/<host>/libvirt/metrics   Debian's prometheus-libvirt-exporter 0.2.0 (kumina): running
                                            domains only (a crashed one drops out),
                                            libvirt_domain_state_code{domain,uuid}
    GET /exporters/probe?module=icmp&target=<host>
                                            blackbox_exporter's ICMP probe: probe_success 1 or 0 (the
                                            prober itself always answers 200)
    GET /exporters/ipmi?target=<host>       ipmi_exporter (multi-target): ipmi_up per collector, chassis
                                            power state, from the host's simulated BMC

Everything follows the host's condition in the lab. A powered-off or hung host answers no exporter
scrape (503, so Prometheus records up=0) and no ping. A host whose nova-compute died answers as usual,
with nova-compute.service `failed`. A BMC with the `mute` fault makes ipmi_up 0.
Metric names, labels and HELP texts are the real exporters' (../shared/fixtures/exporters/).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, Response, request
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from receiver.lab import model
from receiver.lab.model import Condition, Host
from receiver.lab.state import CloudState

PREFIX = "/exporters"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
UNITS = ("libvirtd.service", "nova-compute.service")
SYSTEMD_STATES = ("activating", "active", "deactivating", "failed", "inactive")
IPMI_COLLECTORS = ("bmc", "chassis", "ipmi")
MIB = 1024 * 1024

BmcFault = Callable[[str], str]  # host -> "none" | "mute" | "refuse" | "stuck_on"


def with_exporters(app: Any, cloud: CloudState, bmc_fault: BmcFault) -> DispatcherMiddleware:
    """`app` with the exporters mounted under /exporters (the lab's token does not apply there)."""
    return DispatcherMiddleware(app, {PREFIX: create_app(cloud, bmc_fault)})


def create_app(cloud: CloudState, bmc_fault: BmcFault) -> Flask:
    app = Flask("receiver.lab.exporters")

    @app.get("/<host>/node/metrics")
    def node(host: str) -> Response:
        record = _host(cloud, host)
        if record is None:
            return _text("unknown host\n", 404)
        if not answers_scrapes(record):
            return _text(f"{host} does not answer\n", 503)
        return _text(node_metrics(record))

    @app.get("/<host>/libvirt/metrics")
    def libvirt(host: str) -> Response:
        record = _host(cloud, host)
        if record is None:
            return _text("unknown host\n", 404)
        if not answers_scrapes(record):
            return _text(f"{host} does not answer\n", 503)
        return _text(libvirt_metrics(cloud, host))

    @app.get("/probe")
    def probe() -> Response:
        if request.args.get("module", "icmp") != "icmp":
            return _text("only module=icmp\n", 400)
        record = _host(cloud, request.args.get("target", ""))
        if record is None:
            return _text("unknown target\n", 400)
        return _text(probe_metrics(answers_ping(record)))

    @app.get("/ipmi")
    def ipmi() -> Response:
        target = request.args.get("target", "")
        record = _host(cloud, target)
        if record is None:
            return _text("unknown target\n", 400)
        return _text(ipmi_metrics(record, bmc_fault(target)))

    return app


def answers_scrapes(host: Host) -> bool:
    """Off and hung hosts answer nothing; a host whose nova-compute died runs everything else."""
    return host.condition in (Condition.RUNNING, Condition.COMPUTE_DEAD)


def answers_ping(host: Host) -> bool:
    """A frozen kernel answers no ping either; a dead nova-compute does not stop the network."""
    return answers_scrapes(host)


def node_metrics(host: Host) -> str:
    lines = [
        "# HELP node_exporter_build_info A metric with a constant '1' value labeled by version, revision, "
        "branch, goversion from which node_exporter was built, and the goos and goarch for the build.",
        "# TYPE node_exporter_build_info gauge",
        'node_exporter_build_info{branch="lab",goarch="amd64",goos="linux",goversion="lab",'
        'revision="lab",version="1.5.0"} 1',
        "# HELP node_boot_time_seconds Node boot time, in unixtime.",
        "# TYPE node_boot_time_seconds gauge",
        f"node_boot_time_seconds {host.heartbeat_since:.3f}",
        "# HELP node_systemd_unit_state Systemd unit",
        "# TYPE node_systemd_unit_state gauge",
    ]
    for unit in UNITS:
        current = "active"
        if unit == "nova-compute.service" and host.condition is Condition.COMPUTE_DEAD:
            current = "failed"
        for state in SYSTEMD_STATES:
            value = 1 if state == current else 0
            lines.append(f'node_systemd_unit_state{{name="{unit}",state="{state}",type="service"}} {value}')
    return "\n".join(lines) + "\n"


def domain_name(uuid: str) -> str:
    """Nova names libvirt domains instance-%08x after its database id; the lab has only uuids."""
    return f"instance-{int(uuid.replace('-', ''), 16) % 16**8:08x}"


def libvirt_metrics(cloud: CloudState, host: str) -> str:
    with cloud.lock:
        running = [
            (s.id, s.flavor.vcpus, s.flavor.ram)
            for s in (cloud.servers[i] for i in cloud.servers_by_host.get(host, {}))
            if s.hypervisor_power_state == model.RUNNING  # libvirt's view, not Nova's record
        ]
    lines = [
        "# HELP libvirt_domain_info_maximum_memory_bytes Maximum allowed memory of the domain, in bytes.",
        "# TYPE libvirt_domain_info_maximum_memory_bytes gauge",
        *(f"libvirt_domain_info_maximum_memory_bytes{_domain(i)} {ram * MIB}" for i, _, ram in running),
        "# HELP libvirt_domain_info_virtual_cpus Number of virtual CPUs for the domain.",
        "# TYPE libvirt_domain_info_virtual_cpus gauge",
        *(f"libvirt_domain_info_virtual_cpus{_domain(i)} {vcpus}" for i, vcpus, _ in running),
        "# HELP libvirt_domain_state_code State of the domain.",
        "# TYPE libvirt_domain_state_code gauge",
        *(f"libvirt_domain_state_code{_domain(i)} 1" for i, _, _ in running),
        "# HELP libvirt_domains_number Number of domains.",
        "# TYPE libvirt_domains_number gauge",
        f"libvirt_domains_number {len(running)}",
        "# HELP libvirt_up Whether scraping libvirt's metrics was successful.",
        "# TYPE libvirt_up gauge",
        "libvirt_up 1",
    ]
    return "\n".join(lines) + "\n"


def probe_metrics(success: bool) -> str:
    return (
        "# HELP probe_duration_seconds Returns how long the probe took to complete in seconds\n"
        "# TYPE probe_duration_seconds gauge\n"
        f"probe_duration_seconds {0.0004 if success else 1.0}\n"
        "# HELP probe_success Displays whether or not the probe was a success\n"
        "# TYPE probe_success gauge\n"
        f"probe_success {1 if success else 0}\n"
    )


def ipmi_metrics(host: Host, fault: str) -> str:
    answers = fault != "mute"
    lines = [
        "# HELP ipmi_up '1' if a scrape of the IPMI device was successful, '0' otherwise.",
        "# TYPE ipmi_up gauge",
        *(f'ipmi_up{{collector="{c}"}} {1 if answers else 0}' for c in IPMI_COLLECTORS),
    ]
    if answers:
        powered = host.powered_on or fault == "stuck_on"
        lines += [
            "# HELP ipmi_chassis_power_state Current power state (1=on, 0=off).",
            "# TYPE ipmi_chassis_power_state gauge",
            f"ipmi_chassis_power_state {1 if powered else 0}",
        ]
    return "\n".join(lines) + "\n"


def _domain(uuid: str) -> str:
    return f'{{domain="{domain_name(uuid)}",uuid="{uuid}"}}'


def _host(cloud: CloudState, name: str) -> Host | None:
    with cloud.lock:
        return cloud.hosts.get(name)


def _text(body: str, status: int = 200) -> Response:
    return Response(body, status=status, content_type=CONTENT_TYPE)
