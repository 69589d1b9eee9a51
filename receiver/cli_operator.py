"""`lazarus notifications approve|reject|abort|retry ID --by NAME`."""

from __future__ import annotations

import getpass
from collections.abc import Callable

import click

from receiver.domain.record import Notification


def _default_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""


def register(group: click.Group, services_factory: Callable[[], object]) -> None:
    """Add the operator commands to the `notifications` group."""

    def command(action: str, summary: str) -> None:
        @group.command(action, help=summary)
        @click.argument("uuid")
        @click.option("--by", default=_default_name, show_default="your login name", help="Who decides.")
        def run(uuid: str, by: str) -> None:
            from receiver.bootstrap import Services, utc_now
            from receiver.errors import LazarusError
            from receiver.operator import Operator

            services = services_factory()
            assert isinstance(services, Services)
            operator = Operator(services.store, services.queue, services.settings.worker.lease_ttl_s)
            act: Callable[[str, str, object], Notification] = getattr(operator, action)
            try:
                record = act(uuid, by, utc_now())
            except LazarusError as exc:
                raise click.ClickException(exc.message) from None
            click.echo(
                f"{record.notification_uuid}: {record.status.value} ({record.reason or '-'}) {record.message}"
            )

    command("approve", "Approve a recovery waiting for approval (records who and when).")
    command("reject", "Reject a recovery waiting for approval; nothing is touched.")
    command("abort", "Stop a recovery before its next step; what was done stays recorded.")
    command("retry", "Re-run a failed recovery's failed steps (failed instance moves, a failed fence).")
