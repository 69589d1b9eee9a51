"""Human-readable rendering of a recovery record for `lazarus notifications show`.

A host recovery shows its plan against its outcome, one line per instance: where the plan
sent it (a spare, the scheduler) or why it could not, next to what happened (status,
destination, attempts, the hosts tried); then the diagnosis of what did not move.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from receiver.adapters.redis_store import StoredNotification
from receiver.domain.capacity import shortfall_text
from receiver.domain.placement import Plan
from receiver.domain.record import MoveStatus, Notification, VMove

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
    lines += _plan_and_outcome(r)
    lines += _diagnosis(r.diagnosis)
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


@dataclass(frozen=True)
class InstanceRow:
    """One instance: what the plan said, and what happened."""

    name: str
    uuid: str
    planned: str  # "spare-01 (reserved_host)", "scheduler (auto)", "cannot: local_disk", "-"
    outcome: str  # "succeeded on spare-01, 1 attempt, 12.3s", "not attempted", ...
    detail: str  # Nova's message or the plan's reason, in words


def plan_rows(record: Notification, plan: Plan | None) -> list[InstanceRow]:
    """Every instance of the plan (in move order, then those that cannot move, then those left
    out by policy) and every move the plan does not list, each once."""
    moves = {m.instance_uuid: m for m in record.vmoves}
    assigned = {a.instance.id: a for a in plan.assignments} if plan else {}
    unplaced = {u.instance.id: ("cannot", u) for u in plan.cannot_place} if plan else {}
    unplaced.update({u.instance.id: ("left out", u) for u in plan.not_selected} if plan else {})
    ids = [*plan.order, *(u.instance.id for u in (*plan.cannot_place, *plan.not_selected))] if plan else []
    rows, seen = [], set()
    for iid in [*ids, *moves]:
        if iid in seen:
            continue
        seen.add(iid)
        move = moves.get(iid)
        name = move.instance_name if move else ""
        outcome = _outcome(move, assigned[iid].target if iid in assigned else None)
        detail = move.message if move else ""
        if iid in assigned:
            a = assigned[iid]
            planned = f"{a.target or 'scheduler'} ({a.route.value})"
            name = name or a.instance.name
        elif iid in unplaced:
            how, u = unplaced[iid]
            planned = f"{how}: {u.reason.value}"
            name = name or u.instance.name
            detail = detail or u.message
            if move is None or (move.status is MoveStatus.IGNORED and move.reason == u.reason.value):
                outcome = "not attempted"
        else:
            planned = "-" if plan is None else "not in the plan"
        rows.append(InstanceRow(name or "?", iid, planned, outcome, detail))
    return rows


def _outcome(move: VMove | None, planned_target: str | None) -> str:
    if move is None:
        return "not attempted"
    if move.status is MoveStatus.SUCCEEDED:
        parts = [f"succeeded on {move.dest_host or '?'}"]
        if planned_target and move.dest_host and move.dest_host != planned_target:
            parts[0] += f" (planned {planned_target})"
    elif move.status is MoveStatus.IGNORED:
        parts = ["ignored" + (f" ({move.reason})" if move.reason else "")]
    elif move.status is MoveStatus.FAILED:
        parts = ["failed" + (f" ({move.reason})" if move.reason else "")]
    else:
        parts = [move.status.value + (f" to {move.target_host}" if move.target_host else "")]
    if move.attempts:
        parts.append(f"{move.attempts} attempt{'s' if move.attempts != 1 else ''}")
    if move.tried_hosts:
        parts.append(f"tried {', '.join(move.tried_hosts)}")
    if move.start_time and move.end_time:
        seconds = (
            datetime.fromisoformat(move.end_time) - datetime.fromisoformat(move.start_time)
        ).total_seconds()
        parts.append(f"{seconds:.1f}s")
    if move.locked_by_us and move.status in (MoveStatus.SUCCEEDED, MoveStatus.FAILED, MoveStatus.IGNORED):
        parts.append("still locked by Lazarus")
    return ", ".join(parts)


def _plan_and_outcome(record: Notification) -> list[str]:
    plan, problem = _read_plan(record.plan)
    lines: list[str] = []
    if problem:
        lines.append(f"  plan      unreadable ({problem})")
    if plan is not None:
        lines.append(f"  plan      {plan.summary()}")
        if plan.spares_used:
            lines.append(f"    spares used  {', '.join(plan.spares_used)}")
        if plan.short:
            lines.append(f"    shortfall    {shortfall_text(plan.shortfall)}")
        for note in plan.notes:
            lines.append(f"    note         {note}")
    rows = plan_rows(record, plan)
    if rows:
        lines.append("  instances (planned -> outcome)" if plan else "  instances")
        width = max(len(r.name) for r in rows)
        planned_width = max(len(r.planned) for r in rows)
        for row in rows:
            head = f"    {row.name:{width}} {row.uuid}"
            planned = f"  {row.planned:{planned_width}} -> " if plan else "  "
            tail = f"  {row.detail}" if row.detail else ""
            lines.append(f"{head}{planned}{row.outcome}{tail}".rstrip())
    return lines


def _read_plan(data: dict[str, Any] | None) -> tuple[Plan | None, str]:
    """The record's plan; a malformed one is said, not hidden, and not fatal to the view."""
    if data is None:
        return None, ""
    try:
        return Plan.from_dict(data), ""
    except (KeyError, ValueError, TypeError) as exc:
        return None, f"{type(exc).__name__}: {exc}"


def _diagnosis(data: dict[str, Any] | None) -> list[str]:
    if not data:
        return []
    summary = str(data.get("summary", ""))
    findings = list(data.get("findings", ()))
    # The summary is the one-liner for notifiers: its head, then each finding's message; the
    # findings follow on their own lines here, so only the head is repeated.
    joined = "; ".join(str(f.get("message", "")) for f in findings)
    if findings and summary.endswith("; " + joined):
        summary = summary[: -len(joined) - 2]
    lines = [f"  diagnosis {summary}"]
    for finding in findings:
        message = str(finding.get("message", ""))
        ids = [i for i in finding.get("request_ids", ()) if i not in message]
        suffix = f" ({', '.join(ids)})" if ids else ""
        lines.append(f"    {finding.get('cause', '?'):12} {message}{suffix}")
    return lines
