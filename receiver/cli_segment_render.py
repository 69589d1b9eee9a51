"""`lazarus segment show`: a segment, its hosts, the placement settings in effect, its spares."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from receiver.adapters.redis_inventory import HostView, SegmentView
    from receiver.inventory import SegmentSpec
    from receiver.monitoring.spares import SegmentSpares
    from receiver.settings import Settings

# A segment's placement fields: its own value, or None to follow the evacuation setting of that name.
PLACEMENT_FIELDS = ("shared_storage", "evacuate_all", "skip_error_instances", "capacity_policy")
SETTING = "setting"  # the CLI's word for None


def effective_controls(spec: SegmentSpec, settings: Settings) -> list[tuple[str, Any, str]]:
    """(field, value in effect, where it comes from) for the segment's placement fields and the
    storm guard's share: the segment's own value, or the setting of that name."""
    rows: list[tuple[str, Any, str]] = []
    for name in PLACEMENT_FIELDS:
        own = getattr(spec, name)
        if own is None:
            rows.append((name, getattr(settings.evacuation, name), f"setting evacuation.{name}"))
        else:
            rows.append((name, own, "segment"))
    rows.append(("requires_approval", spec.requires_approval, "segment"))
    rows.append(("shadow", spec.shadow, "segment"))
    if spec.max_down_share is None:
        rows.append(("max_down_share", settings.storm.max_down_share, "setting storm.max_down_share"))
    else:
        rows.append(("max_down_share", spec.max_down_share, "segment"))
    return rows


def render_segment(
    seg: SegmentView,
    hosts: list[HostView],
    spares: SegmentSpares,
    claims: dict[str, str],
    settings: Settings,
) -> str:
    """`claims`: host name -> the open recovery holding it (the failed host, a plan's spare)."""
    spec = seg.spec
    lines = [
        f"segment {spec.name} ({spec.uuid}, id {seg.meta.id})",
        f"  recovery     {spec.recovery_method.value}",
        f"  service      {spec.service_type}",
        f"  enabled      {'yes' if spec.enabled else 'no'}",
        f"  description  {spec.description or '-'}",
        "  in effect    (the segment's own value, or the setting of that name)",
    ]
    for name, value, source in effective_controls(spec, settings):
        lines.append(f"    {name:22} {_shown(value):24} {source}")
    lines.append(f"  hosts        {len(hosts)}")
    free = set(spares.verdict.free)
    for h in sorted(hosts, key=lambda v: v.spec.name):
        notes = []
        if h.spec.reserved:
            holder = claims.get(h.spec.name)
            if h.spec.name in free:
                notes.append("reserved spare")
            elif holder is not None and holder != h.recovery:
                notes.append(f"reserved spare (taken by recovery {holder})")
            else:
                notes.append("reserved spare (not available)")
        if h.on_maintenance:
            notes.append(f"on maintenance: {h.state.reason or 'no reason given'}")
        if h.recovery:
            notes.append(f"under recovery {h.recovery}")
        if h.spec.bmc is None:
            notes.append("no fence method")
        lines.append(f"    {h.spec.name:24} {'; '.join(notes) or 'in service'}")
    reserved = sum(1 for h in hosts if h.spec.reserved)
    listed = f": {', '.join(spares.verdict.free)}" if spares.verdict.free else ""
    uses = "" if spares.verdict.needed else f" (recovery method {spec.recovery_method.value} uses none)"
    lines.append(f"  spares       {len(free)} free of {reserved} reserved{listed}{uses}")
    if spares.verdict.needed and not spares.verdict.free:
        if spec.enabled:
            lines.append(f"  WARNING      {spares.verdict.message}")
        else:
            lines.append(
                f"  note         {spares.verdict.message} (the segment is disabled: no recovery runs)"
            )
    return "\n".join(lines)


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
