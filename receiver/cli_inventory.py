"""`lazarus segment list|show|create|update|delete` and `lazarus host ...`: the inventory store,
edited one object at a time, under the same rules as the Masakari API (unique names, nothing
changes in a segment under recovery, a fenced host stays on maintenance).

`lazarus inventory apply FILE` remains the declarative way; these are for the quick change
at 3 a.m. A BMC password is given as a reference (an environment variable or a file that
the worker reads when it fences), never as a value.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from receiver.cli_segment_render import PLACEMENT_FIELDS, SETTING, effective_controls, render_segment
from receiver.inventory import RecoveryMethod

_METHODS = click.Choice([m.value for m in RecoveryMethod])
# A placement option's values: "setting" makes the segment follow the evacuation setting (None).
_YES_NO = ("yes", "no", SETTING)
_POLICIES = ("proceed", "proceed_with_what_fits", "hold_for_approval")


def register(group: click.Group, services_factory: Callable[[], object]) -> None:
    """Add `segment` and `host` to the `lazarus` group."""
    group.add_command(_segment_group(services_factory))
    group.add_command(_host_group(services_factory))


def _store(services_factory: Callable[[], object]) -> Any:
    from receiver.bootstrap import Services

    services = services_factory()
    assert isinstance(services, Services)
    return services.inventory


def _call(action: Callable[[], Any]) -> Any:
    from receiver.errors import LazarusError

    try:
        return action()
    except LazarusError as exc:
        raise click.ClickException(exc.message) from None


def _check_name(services_factory: Callable[[], object], name: str | None) -> None:
    """A host named in the inventory must be one Nova runs nova-compute on (see inventory_nova)."""
    from receiver.bootstrap import Services
    from receiver.inventory_nova import require_compute_hosts

    services = services_factory()
    assert isinstance(services, Services)
    if name is not None and services.settings.nova.require_compute_hosts:
        _call(lambda: require_compute_hosts(services.compute(), [name]))


def _now() -> Any:
    from receiver.bootstrap import utc_now

    return utc_now()


def _given(**options: Any) -> dict[str, Any]:
    return {k: v for k, v in options.items() if v is not None}


# -- segments ------------------------------------------------------------------------------


def _segment_group(services_factory: Callable[[], object]) -> click.Group:
    @click.group("segment")
    def segment() -> None:
        """Failover segments (Masakari's), and their hosts."""

    @segment.command("list")
    @click.option("--json", "as_json", is_flag=True)
    def segment_list(as_json: bool) -> None:
        """The segments, newest first."""
        from receiver.web import views

        segments = _call(lambda: _store(services_factory).segments())
        if as_json:
            click.echo(json.dumps({"segments": [views.segment(s) for s in segments]}, indent=2))
            return
        click.echo(f"{'UUID':36}  {'NAME':20}  {'RECOVERY':14}  {'ENABLED':7}  DESCRIPTION")
        for s in segments:
            spec = s.spec
            enabled = "yes" if spec.enabled else "no"
            click.echo(
                f"{spec.uuid:36}  {spec.name:20}  {spec.recovery_method.value:14}  {enabled:7}  "
                f"{spec.description or ''}"
            )

    @segment.command("show")
    @click.argument("segment_ref", metavar="SEGMENT")
    @click.option("--json", "as_json", is_flag=True)
    def segment_show(segment_ref: str, as_json: bool) -> None:
        """A segment, its hosts, its placement settings in effect, and which hosts are free
        reserved spares (a spare an open recovery holds is not free)."""
        from receiver.monitoring.spare_readiness import ReadinessStore
        from receiver.monitoring.spares import read_claims, segment_spares
        from receiver.web import views

        services: Any = services_factory()
        seg, hosts = _call(lambda: services.inventory.segment_hosts(segment_ref))
        claims = _call(lambda: read_claims(services.store))
        readiness = ReadinessStore(services.redis, services.settings.key_prefix)
        unready = {k: v for k, v in _call(readiness.unready).items() if k in {h.spec.name for h in hosts}}
        spares = segment_spares(seg.spec, hosts, claims, unready)
        if as_json:
            body = {
                **views.segment(seg),
                "effective": {
                    name: {"value": value, "from": source}
                    for name, value, source in effective_controls(seg.spec, services.settings)
                },
                "spares": {
                    "needed": spares.needed,
                    "free": list(spares.verdict.free),
                    "held": {h.spec.name: claims[h.spec.name] for h in hosts if h.spec.name in claims},
                    "not_ready": unready,
                    "message": spares.verdict.message,
                },
                "hosts": [views.host(h) for h in hosts],
            }
            click.echo(json.dumps({"segment": body}, indent=2))
            return
        click.echo(render_segment(seg, hosts, spares, claims, services.settings))

    @segment.command("create")
    @click.argument("name")
    @click.option("--recovery-method", type=_METHODS, default="auto", show_default=True)
    @click.option("--service-type", default="COMPUTE", show_default=True)
    @click.option("--description")
    @click.option("--enabled/--disabled", default=True, show_default=True)
    @_placement_options
    def segment_create(name: str, **options: Any) -> None:
        """Create a segment (its hosts come with `lazarus host create`); placement options left
        out follow the evacuation settings."""
        placement = _placement_fields(options)
        fields = {**_given(name=name, **options), **placement}
        created = _call(lambda: _store(services_factory).create_segment(fields, _now()))
        click.echo(f"segment {created.spec.name}: created ({created.spec.uuid})")

    @segment.command("update")
    @click.argument("segment_ref", metavar="SEGMENT")
    @click.option("--name")
    @click.option("--recovery-method", type=_METHODS)
    @click.option("--service-type")
    @click.option("--description")
    @click.option("--enabled/--disabled", default=None)
    @_placement_options
    def segment_update(segment_ref: str, **options: Any) -> None:
        """Change a segment (refused while one of its hosts is under recovery); a placement
        option given as 'setting' goes back to following the evacuation setting."""
        placement = _placement_fields(options)
        changes = {**_given(**options), **placement}
        if not changes:
            raise click.UsageError("nothing to change: give at least one option")
        updated = _call(lambda: _store(services_factory).update_segment(segment_ref, changes, _now()))
        click.echo(f"segment {updated.spec.name}: updated")

    @segment.command("delete")
    @click.argument("segment_ref", metavar="SEGMENT")
    def segment_delete(segment_ref: str) -> None:
        """Delete a segment and its hosts (refused while one of them is under recovery)."""
        for line in _call(lambda: _store(services_factory).delete_segment(segment_ref)):
            click.echo(line)

    return segment


def _placement_options(command: Callable[..., Any]) -> Callable[..., Any]:
    yes_no = click.Choice(_YES_NO)
    policies = click.Choice([*_POLICIES, SETTING])
    for option in reversed(
        [
            click.option(
                "--shared-storage",
                type=yes_no,
                help="Instance disks on shared storage (Ceph, NFS). 'setting': evacuation.shared_storage.",
            ),
            click.option(
                "--evacuate-all",
                type=yes_no,
                help="Every instance, not only HA_Enabled=True; 'setting': evacuation.evacuate_all.",
            ),
            click.option(
                "--skip-error-instances",
                type=yes_no,
                help="Leave instances in ERROR; 'setting': evacuation.skip_error_instances.",
            ),
            click.option(
                "--capacity-policy",
                type=policies,
                help="When the capacity plan falls short; 'setting': evacuation.capacity_policy.",
            ),
        ]
    ):
        command = option(command)
    return command


def _placement_fields(options: dict[str, Any]) -> dict[str, Any]:
    """The placement options given, as segment fields; 'setting' is an explicit None."""
    fields: dict[str, Any] = {}
    for name in PLACEMENT_FIELDS:
        choice = options.pop(name)
        if choice is None:
            continue
        if choice == SETTING:
            fields[name] = None
        elif name == "capacity_policy":
            fields[name] = choice
        else:
            fields[name] = choice == "yes"
    return fields


# -- hosts ---------------------------------------------------------------------------------


def _bmc_options(command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        [
            click.option("--type", "host_type", help="Masakari's host type (default COMPUTE)."),
            click.option("--control-attributes"),
            click.option("--reserved/--not-reserved", default=None, help="A spare for reserved_host."),
            click.option("--on-maintenance/--in-service", default=None),
            click.option("--bmc-driver", help="The fence driver (default ipmi)."),
            click.option("--bmc-address"),
            click.option("--bmc-port", type=int),
            click.option("--bmc-username"),
            click.option(
                "--bmc-password-env", metavar="VARIABLE", help="Where the worker reads the password."
            ),
            click.option(
                "--bmc-password-file", type=click.Path(path_type=Path), help="Likewise, from a file."
            ),
        ]
    ):
        command = option(command)
    return command


def _host_fields(options: dict[str, Any]) -> dict[str, Any]:
    fields = _given(
        type=options.pop("host_type"),
        control_attributes=options.pop("control_attributes"),
        reserved=options.pop("reserved"),
        on_maintenance=options.pop("on_maintenance"),
    )
    env, file = options.pop("bmc_password_env"), options.pop("bmc_password_file")
    if env is not None and file is not None:
        raise click.UsageError("give --bmc-password-env or --bmc-password-file, not both")
    bmc = _given(
        driver=options.pop("bmc_driver"),
        address=options.pop("bmc_address"),
        port=options.pop("bmc_port"),
        username=options.pop("bmc_username"),
        password={"env": env} if env else {"file": str(file)} if file else None,
    )
    if bmc:
        fields["bmc"] = bmc
    return fields


def _host_group(services_factory: Callable[[], object]) -> click.Group:
    @click.group("host")
    def host() -> None:
        """Hosts of the failover segments (host names are unique across segments)."""

    @host.command("list")
    @click.option("--segment", "segment_ref", help="Only the hosts of this segment.")
    @click.option("--json", "as_json", is_flag=True)
    def host_list(segment_ref: str | None, as_json: bool) -> None:
        """The hosts, with their segment, spare and maintenance flags, fence method and recovery."""
        from receiver.web import views

        store = _store(services_factory)
        hosts = _call(lambda: store.segment_hosts(segment_ref)[1] if segment_ref else store.hosts())
        if as_json:
            click.echo(json.dumps({"hosts": [views.host(h) for h in hosts]}, indent=2))
            return
        click.echo(f"{'NAME':24}  {'SEGMENT':20}  {'RESERVED':8}  {'MAINT':5}  {'FENCING':24}  RECOVERY")
        for h in hosts:
            bmc = f"{h.spec.bmc.driver} {h.spec.bmc.address}" if h.spec.bmc else "-"
            click.echo(
                f"{h.spec.name:24}  {h.segment.name:20}  {'yes' if h.spec.reserved else 'no':8}  "
                f"{'yes' if h.on_maintenance else 'no':5}  {bmc:24}  {h.recovery or '-'}"
            )

    @host.command("show")
    @click.argument("host_ref", metavar="HOST")
    def host_show(host_ref: str) -> None:
        """A host as the API shows it (JSON; its fencing block holds a password reference only),
        with its BMC's last probe and its last fence drill."""
        from dataclasses import asdict

        from receiver.probe import ProbeStore
        from receiver.web import views
        from receiver.workflow.drill import DrillStore

        services: Any = services_factory()
        view = _call(lambda: _store(services_factory).host_in(None, host_ref))
        prefix = services.settings.key_prefix
        probe = _call(
            lambda: ProbeStore(services.redis, prefix, services.settings.probe.max_age_s).get(view.spec.name)
        )
        drill = _call(lambda: DrillStore(services.redis, prefix).last(view.spec.name))
        shown = {
            "host": views.host(view),
            "bmc_probe": json.loads(probe.to_json()) if probe else None,
            "last_drill": asdict(drill) if drill else None,
        }
        click.echo(json.dumps(shown, indent=2))

    @host.command("create")
    @click.argument("name")
    @click.option("--segment", "segment_ref", required=True)
    @_bmc_options
    def host_create(name: str, segment_ref: str, **options: Any) -> None:
        """Add a host (its Nova compute host name) to a segment."""
        fields = {"name": name, **_host_fields(options)}
        _check_name(services_factory, name)
        created = _call(
            lambda: _store(services_factory).create_host(segment_ref, fields, _now(), source="cli")
        )
        click.echo(
            f"host {created.spec.name}: created in segment {created.segment.name} ({created.spec.uuid})"
        )

    @host.command("update")
    @click.argument("host_ref", metavar="HOST")
    @click.option("--name")
    @click.option("--no-bmc", is_flag=True, help="Remove the fence method.")
    @_bmc_options
    def host_update(host_ref: str, name: str | None, no_bmc: bool, **options: Any) -> None:
        """Change a host; a fenced host stays on maintenance (see `lazarus host reinstate`)."""
        changes = {**_given(name=name), **_host_fields(options)}
        if no_bmc:
            if "bmc" in changes:
                raise click.UsageError("--no-bmc removes the fence method: give no --bmc-* option with it")
            changes["bmc"] = None
        if not changes:
            raise click.UsageError("nothing to change: give at least one option")
        _check_name(services_factory, name)
        updated = _call(
            lambda: _store(services_factory).update_host(None, host_ref, changes, _now(), source="cli")
        )
        click.echo(f"host {updated.spec.name}: updated")

    @host.command("delete")
    @click.argument("host_ref", metavar="HOST")
    def host_delete(host_ref: str) -> None:
        """Remove a host (refused while its segment is under recovery)."""
        for line in _call(lambda: _store(services_factory).delete_host(None, host_ref)):
            click.echo(line)

    return host
