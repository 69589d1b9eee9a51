"""`lazarus host reinstate|drill HOST`: the explicit way back to service, and fence drills."""

from __future__ import annotations

import getpass
import json
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import click


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""


def register(host: click.Group, services_factory: Callable[[], Any]) -> None:
    @host.command("reinstate")
    @click.argument("name")
    @click.option("--by", default=_login, show_default="your login name", help="Who decides.")
    @click.option("--accept-flapping", is_flag=True, help="Reinstate a host quarantined for flapping.")
    @click.option("--timeout", type=float, default=600.0, show_default=True, help="Seconds to wait for Nova.")
    def reinstate_command(name: str, by: str, accept_flapping: bool, timeout: float) -> None:
        """Power a fenced host on, wait for nova-compute's cleanup, un-force, enable, clear maintenance."""
        from receiver.errors import LazarusError
        from receiver.workflow.reinstate import ReinstateDeps, ReinstatePolicy, reinstate

        services = services_factory()
        deps = ReinstateDeps(
            store=services.store,
            inventory=services.inventory,
            compute=services.compute,
            power=services.power,
            events=services.events,
            clock=services.clock,
            policy=ReinstatePolicy(cleanup_timeout_s=timeout),
        )
        try:
            record = reinstate(deps, name, by, accept_flapping=accept_flapping, progress=click.echo)
        except LazarusError as exc:
            raise click.ClickException(exc.message) from None
        click.echo(f"{name}: back in service (recorded on {record.notification_uuid})")

    @host.command("drill")
    @click.argument("name")
    @click.option("--by", default=_login, show_default="your login name")
    def drill_command(name: str, by: str) -> None:
        """Power a host in maintenance with no instances off and on through its fence method."""
        from receiver.errors import LazarusError
        from receiver.workflow.drill import DrillStore, drill

        services = services_factory()
        try:
            result = drill(
                name,
                by,
                inventory=services.inventory,
                compute=services.compute,
                power_for=services.power,
                clock=services.clock,
                store=DrillStore(services.redis, services.settings.key_prefix),
            )
        except LazarusError as exc:
            raise click.ClickException(exc.message) from None
        click.echo(json.dumps(asdict(result), indent=2))
        if not result.passed:
            raise click.ClickException(f"drill of {name} FAILED: {result.message}")
