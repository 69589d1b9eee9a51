"""Human-readable rendering of a recovery record for `lazarus notifications show`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from receiver.adapters.redis_store import StoredNotification

if TYPE_CHECKING:
    from receiver.notify.ledger import DeliveryEntry


def render_notification(stored: StoredNotification, deliveries: Sequence[DeliveryEntry] = ()) -> str:
    r = stored.record
    lines = [
        f"notification {r.notification_uuid}",
        f"  type      {r.type.value}",
        f"  host      {r.hostname or '-'}",
        f"  status    {r.status.value}" + (f" ({r.reason})" if r.reason else ""),
        f"  message   {r.message}",
        f"  phase     {r.phase.value}   attempt {r.attempt}",
        f"  created   {r.created_at}   updated {r.updated_at}",
        f"  alerts    {len(stored.alerts)} linked, {stored.duplicates} duplicate deliveries",
    ]
    if r.fencing:
        lines.append("  fencing")
        for f in r.fencing:
            lines.append(
                f"    {f.started_at[11:23]} {f.method} {f.bmc}: power {f.power_before} -> "
                f"{f.power_after} ({f.outcome})"
            )
    if r.vmoves:
        lines.append("  instances")
        for m in r.vmoves:
            took = ""
            if m.start_time and m.end_time:
                from datetime import datetime

                seconds = (
                    datetime.fromisoformat(m.end_time) - datetime.fromisoformat(m.start_time)
                ).total_seconds()
                took = f" {seconds:.1f}s"
            lines.append(
                f"    {m.instance_name:20} {m.instance_uuid}  {m.source_host} -> {m.dest_host or '?':10} "
                f"{m.status.value}{took}  {m.message}"
            )
    if r.steps:
        lines.append("  steps")
        for s in r.steps:
            lines.append(f"    {s.at[11:23]} {s.name:9} {s.state:9} {s.message}")
    if deliveries:
        lines.append("  notified (last result per notifier)")
        for d in deliveries:
            http = f" HTTP {d.status}" if d.status is not None else ""
            retry = f", next try in {d.next_try_in_s:g}s" if d.next_try_in_s is not None else ""
            lines.append(
                f"    {d.at[11:23]} {d.notifier:14} {d.event:18} {d.outcome:10} "
                f"attempt {d.attempts}{http}{retry}  {d.detail}".rstrip()
            )
    return "\n".join(lines)
