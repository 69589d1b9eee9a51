"""`lazarus lab ...`: run the simulated cloud and drive it (the lead adds `lab` to the main CLI)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import click

from receiver.lab.manifest import LabManifest
from receiver.lab.topology import RECOVERY_METHODS, LabOptions

WORKDIR = click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("lab"),
    show_default=True,
    help="Directory holding the lab's manifest.json, clouds.yaml, inventory.yaml and bmc-password.",
)


def _names(value: str | None) -> tuple[str, ...] | None:
    return None if value is None else tuple(name.strip() for name in value.split(",") if name.strip())


@click.group()
def lab() -> None:
    """A simulated cloud (Nova compute API + IPMI BMCs) for the demo, tests and drills."""


@lab.command()
@WORKDIR
@click.option("--hosts", help="Comma-separated host names (default node-01,node-02,node-03).")
@click.option("--host-count", type=click.IntRange(min=1), help="N hosts named node-01.. instead of --hosts.")
@click.option(
    "--servers-per-host", type=click.IntRange(min=0), help="M servers per host (default: demo layout)."
)
@click.option(
    "--service-down-time",
    type=float,
    default=10.0,
    show_default=True,
    help="Seconds without heartbeat before a compute service is down.",
)
@click.option("--report-interval", type=float, default=1.0, show_default=True, help="Heartbeat period (s).")
@click.option(
    "--evacuate-delay",
    type=float,
    default=1.0,
    show_default=True,
    help="Seconds from an accepted evacuate to the server's arrival.",
)
@click.option(
    "--action-delay", type=float, default=0.3, show_default=True, help="Seconds for start/stop/reboot."
)
@click.option("--port", type=int, default=0, show_default=True, help="HTTP port (0: a free one).")
@click.option(
    "--token", envvar="LAZARUS_LAB_TOKEN", help="API token (default: random; env LAZARUS_LAB_TOKEN)."
)
@click.option("--bmc/--no-bmc", default=True, show_default=True, help="Run IPMI BMC simulators.")
@click.option("--bmc-hosts", help="Only these hosts get a BMC (large labs: one UDP socket per BMC).")
@click.option("--bmc-username", default="admin", show_default=True)
@click.option("--host-vcpus", type=int, default=32, show_default=True)
@click.option("--host-memory-mb", type=int, default=131072, show_default=True)
@click.option("--host-disk-gb", type=int, default=2000, show_default=True)
@click.option("--flavor", default="m1.small", show_default=True, help="Flavor of the generated servers.")
@click.option("--log-requests/--no-log-requests", default=False, help="Log every HTTP request.")
@click.option(
    "--spares", help="Comma-separated reserved spares: compute disabled, empty, `reserved` in the inventory."
)
@click.option(
    "--recovery-method",
    type=click.Choice(RECOVERY_METHODS),
    default="auto",
    show_default=True,
    help="The recovery method of the inventory's segment.",
)
@click.option(
    "--shared-storage/--no-shared-storage",
    default=True,
    show_default=True,
    help="Whether the inventory's segment says instance disks are on shared storage.",
)
@click.option(
    "--host-capacity",
    help="Per-host sizes, comma-separated HOST:KEY=N[:KEY=N] (KEY vcpus, memory_mb, disk_gb).",
)
def serve(
    workdir: Path,
    hosts: str | None,
    bmc_hosts: str | None,
    spares: str | None,
    host_capacity: str | None,
    **values: Any,
) -> None:
    """Run a lab in the foreground until SIGTERM / SIGINT."""
    from receiver.lab.runner import serve as run

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        options = LabOptions(
            hosts=_names(hosts),
            bmc_hosts=_names(bmc_hosts),
            spares=_names(spares) or (),
            host_capacity=_names(host_capacity) or (),
            **values,
        )
        options.host_names(), options.bmc_host_names(), options.spare_names(), options.capacity_overrides()
    except ValueError as error:
        raise click.BadParameter(str(error)) from error
    run(workdir, options)


def _control(workdir: Path) -> Any:
    from receiver.lab.testing import LabControl

    try:
        return LabControl(LabManifest.load(workdir))
    except FileNotFoundError as error:
        raise click.ClickException(f"no running lab in {workdir} (no manifest.json)") from error


def _run(action: Any) -> Any:
    from receiver.lab.testing import LabError

    try:
        return action()
    except LabError as error:
        raise click.ClickException(str(error)) from error
    except OSError as error:
        raise click.ClickException(f"lab unreachable: {error}") from error


@lab.command()
@click.argument("host")
@WORKDIR
def kill(host: str, workdir: Path) -> None:
    """Power HOST off: its BMC reports OFF and its compute service stops heartbeating."""
    _run(lambda: _control(workdir).power(host, on=False))
    click.echo(f"{host}: powered off")


@lab.command("power-on")
@click.argument("host")
@WORKDIR
def power_on(host: str, workdir: Path) -> None:
    """Power HOST on again; its compute service heartbeats again."""
    _run(lambda: _control(workdir).power(host, on=True))
    click.echo(f"{host}: powered on")


@lab.command()
@click.argument("host")
@WORKDIR
@click.option("--recover", is_flag=True, help="Let a hung HOST carry on (its same nova-compute resumes).")
def hang(host: str, workdir: Path, recover: bool) -> None:
    """Freeze HOST: no heartbeat, servers unreachable, but its BMC still reports ON."""
    state = _run(lambda: _control(workdir).hang(host, hung=not recover))
    click.echo(f"{host}: {state['condition']} (power {state['power']}, service {state['service']})")


@lab.command()
@click.argument("host")
@click.argument("action", type=click.Choice(["stop", "start"]))
@WORKDIR
def compute(host: str, action: str, workdir: Path) -> None:
    """Kill nova-compute on HOST (servers keep running, BMC says ON), or start it again."""
    state = _run(lambda: _control(workdir).compute(host, running=action == "start"))
    click.echo(f"{host}: {state['condition']} (power {state['power']}, service {state['service']})")


@lab.command()
@click.argument("server_id")
@WORKDIR
@click.option(
    "--power-state",
    type=click.Choice(["4", "6"]),
    default="4",
    show_default=True,
    help="What the hypervisor then reports: 4 SHUTDOWN (QEMU died) or 6 CRASHED (panic kept).",
)
@click.option(
    "--sync-after",
    type=click.FloatRange(min=0),
    help="Seconds until Nova's power-state sync records it and stops the instance (default: never).",
)
def crash(server_id: str, workdir: Path, power_state: str, sync_after: float | None) -> None:
    """Crash SERVER_ID's guest: the hypervisor says it is off while Nova still says active."""
    state = _run(lambda: _control(workdir).crash(server_id, int(power_state), sync_after))
    click.echo(
        f"{server_id}: hypervisor power_state {state['hypervisor_power_state']}, Nova {state['vm_state']} "
        f"power_state {state['power_state']}"
        + ("" if sync_after is None else f"; Nova's power sync in {sync_after:g} s")
    )


@lab.command()
@WORKDIR
@click.option("--json", "as_json", is_flag=True, help="Print the control API's JSON.")
def status(workdir: Path, as_json: bool) -> None:
    """Hosts (power, condition, service), servers by status, migrations, faults."""
    report = _run(lambda: _control(workdir).status())
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    for name, host in report["hosts"].items():
        flags = " ".join(flag for flag in ("forced_down", "disabled") if host[flag])
        click.echo(f"{name:<16} power {host['power']:<3}  {host['condition']:<12}  service "
                   f"{host['service']:<4}  servers {host['servers']:<5} {flags}")  # fmt: skip
    click.echo(f"servers: {report['servers']}  migrations: {report['migrations']}")
    click.echo(f"faults: {report['faults']}")


@lab.group()
def fault() -> None:
    """Inject faults into a running lab."""


@fault.command("evacuate")
@click.argument("server_id", required=False)
@WORKDIR
@click.option("--target", help="Only evacuations onto this host (without SERVER_ID: of any server).")
@click.option("--clear", is_flag=True, help="Let these evacuations succeed again.")
def fault_evacuate(server_id: str | None, workdir: Path, target: str | None, clear: bool) -> None:
    """Make evacuations of SERVER_ID (onto --target, if given) end in ERROR, as a failed rebuild."""
    if server_id is None and target is None:
        raise click.UsageError("give SERVER_ID, --target, or both")
    _run(lambda: _control(workdir).fail_evacuation(server_id, fail=not clear, target=target))


@fault.command("api-delay")
@click.argument("delay_ms", type=click.IntRange(min=0))
@WORKDIR
def fault_api_delay(delay_ms: int, workdir: Path) -> None:
    """Delay every compute API response by DELAY_MS milliseconds (0 clears)."""
    _run(lambda: _control(workdir).api_delay(delay_ms))


@fault.command("forbid")
@click.argument("path")
@WORKDIR
@click.option("--clear", is_flag=True, help="Allow PATH again.")
def fault_forbid(path: str, workdir: Path, clear: bool) -> None:
    """Refuse every compute API request under PATH (say /os-hypervisors) with 403, as Nova's
    policy does for a role it does not allow."""
    _run(lambda: _control(workdir).forbid(path, forbid=not clear))


@fault.command("bmc")
@click.argument("host")
@click.argument("kind", type=click.Choice(["none", "mute", "refuse", "stuck_on"]))
@WORKDIR
def fault_bmc(host: str, kind: str, workdir: Path) -> None:
    """Make HOST's BMC never answer (mute), refuse power changes, or keep reporting ON (stuck_on)."""
    _run(lambda: _control(workdir).bmc_fault(host, kind))


@fault.command("clear")
@WORKDIR
def fault_clear(workdir: Path) -> None:
    """Clear every injected fault."""
    _run(lambda: _control(workdir).clear_faults())
