"""The capacity pre-flight: before anything is fenced, where the dead host's instances will go.

Reads only (Nova's servers and hypervisors, the inventory) and writes the record: the plan,
and one move per instance: pending with its planned target, or ignored with the reason it
is left out (not HA-enabled, cannot be evacuated, no room). "What happened to my VM?"
always has an answer, and nothing is attempted blindly.

The reserved spares the plan uses are claimed for this recovery (one plan per spare across
workers); a spare held by another open recovery is planned around.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from receiver.adapters.redis_inventory import HostView
from receiver.domain.capacity import AllocationRatios, Target, target_from_report
from receiver.domain.model import Server
from receiver.domain.placement import Plan, plan_placement, plan_unchecked
from receiver.domain.plan_policy import CapacityPolicy, PlanAction, PlanVerdict, judge_plan
from receiver.domain.record import MoveStatus, Notification, VMove
from receiver.domain.selection import Selection, SelectionPolicy, select_instances
from receiver.errors import ComputeError
from receiver.settings import EvacuationSettings
from receiver.workflow.context import RecoveryContext
from receiver.workflow.deps import HostRecoveryDeps
from receiver.workflow.retry import retry_transient

CAPACITY_HOLD = "capacity_hold"  # mark: the plan falls short and the segment holds for approval
_CLAIM_ROUNDS = 3


@dataclass(frozen=True)
class Policies:
    selection: SelectionPolicy
    capacity: CapacityPolicy


def policies(host: HostView, settings: EvacuationSettings, ha_key: str) -> Policies:
    """The segment's own placement fields, else the settings of the same name."""
    segment = host.segment

    def pick(own: bool | None, default: bool) -> bool:
        return default if own is None else own

    selection = SelectionPolicy(
        evacuate_all=pick(segment.evacuate_all, settings.evacuate_all),
        skip_error=pick(segment.skip_error_instances, settings.skip_error_instances),
        shared_storage=pick(segment.shared_storage, settings.shared_storage),
        ha_key=ha_key,
        exclude_projects=frozenset(settings.exclude_projects),
    )
    return Policies(selection, CapacityPolicy(segment.capacity_policy or settings.capacity_policy))


def targets(ctx: RecoveryContext, deps: HostRecoveryDeps, failed: str) -> list[Target]:
    """Every compute host Nova reports, with the inventory's flags. A host on maintenance or
    under a recovery of its own (another dead host) is never a target."""
    compute = deps.compute()
    reports = retry_transient(compute.hypervisors)
    views = {h.spec.name: h for h in deps.inventory.hosts()}
    policy = deps.settings.evacuation
    ratios = AllocationRatios(
        policy.cpu_allocation_ratio, policy.ram_allocation_ratio, policy.disk_allocation_ratio
    )
    found = []
    for report in reports:
        if report.host == failed:
            continue
        view = views.get(report.host)
        busy = view is not None and (view.on_maintenance or view.recovery is not None)
        reserved = view is not None and view.spec.reserved
        found.append(target_from_report(report, ratios, reserved=reserved, on_maintenance=busy))
    return found


def free_spares(ctx: RecoveryContext, deps: HostRecoveryDeps, host: HostView) -> list[str]:
    """The segment's spares this recovery may use: reserved ones no other open recovery holds,
    and those it already holds. A spare it took into service is no longer reserved but stays
    its own: concurrent retries, and a successor worker, must still be offered it."""
    candidates = [
        h
        for h in deps.inventory.hosts()
        if h.segment.uuid == host.segment.uuid
        and not h.on_maintenance
        and h.recovery is None
        and h.spec.name != host.spec.name
    ]
    held = ctx.store.spare_holders([h.spec.name for h in candidates])
    return sorted(
        h.spec.name
        for h in candidates
        if held.get(h.spec.name) == ctx.uuid or (h.spec.reserved and h.spec.name not in held)
    )


def run(ctx: RecoveryContext, deps: HostRecoveryDeps, host: HostView) -> PlanVerdict:
    """Plan, claim the spares the plan uses, record it; the verdict of the segment's policy."""
    compute = deps.compute()
    name = host.spec.name
    servers = retry_transient(lambda: compute.servers_on(name))
    survey = _survey(ctx, deps, host, servers)
    if survey.no_figures is not None:
        ctx.step(
            "plan", "warning", f"Nova gave no hypervisor figures ({survey.no_figures}): room not checked"
        )
    spares = free_spares(ctx, deps, host)
    plan = survey.plan(host, spares)
    for _ in range(_CLAIM_ROUNDS):
        lost = [s for s in plan.spares_used if ctx.store.claim_spare(s, ctx.uuid) != ctx.uuid]
        if not lost:
            break
        spares = [s for s in spares if s not in lost]
        plan = survey.plan(host, spares)
    verdict = judge_plan(plan, survey.policies.capacity)
    # A held plan records the moves approval would start, so the operator sees what they approve.
    held = verdict.action is PlanAction.HOLD
    moving = judge_plan(plan, CapacityPolicy.PROCEED) if held else verdict
    now = ctx.clock.now()

    def record(r: Notification) -> Notification:
        r = r.with_plan(plan.to_dict(), now)
        for move in moves_of(plan, moving, servers, name):
            r = r.with_vmove(move, now)
        if held:
            r = r.mark(CAPACITY_HOLD, verdict.message, now)
        return r

    ctx.update(record)
    for warning in survey.selection.warnings:
        ctx.step("plan", "warning", warning)
    ctx.step("plan", "succeeded" if plan.complete else "partial", f"capacity plan: {verdict.message}")
    return verdict


def moves_of(plan: Plan, verdict: PlanVerdict, servers: list[Server], source: str) -> list[VMove]:
    """One move per instance of the host, in the plan's order: pending to its target, or
    ignored with the reason it is left out."""
    by_id = {s.id: s for s in servers}
    moves = [
        VMove(
            instance_uuid=a.instance.id,
            instance_name=a.instance.name,
            source_host=source,
            prior_status=prior_status(by_id[a.instance.id]),
            target_host=a.target,
            route=a.route.value,
        )
        for a in verdict.moves
    ]
    for left in (*verdict.left_out, *plan.not_selected):
        server = by_id[left.instance.id]
        moves.append(
            VMove(
                instance_uuid=left.instance.id,
                instance_name=left.instance.name,
                source_host=source,
                prior_status=prior_status(server),
                status=MoveStatus.IGNORED,
                reason=left.reason.value,
                message=f"not attempted: {left.message}",
            )
        )
    return moves


def prior_status(server: Server) -> str:
    """What the instance must be again after the move: SHUTOFF stays SHUTOFF, the rest runs."""
    return "SHUTOFF" if server.status.upper() == "SHUTOFF" else "ACTIVE"


def late_moves(
    ctx: RecoveryContext, deps: HostRecoveryDeps, servers: list[Server], source: str
) -> list[VMove]:
    """Instances that appeared on the host after the plan: the same selection, placed with
    the spares the plan already took (Nova's scheduler takes them where the method allows)."""
    host = deps.inventory.host(source)
    if not servers or host is None:
        return []
    spares = [str(s) for s in (ctx.record().plan or {}).get("spares_used", ())]
    plan = _survey(ctx, deps, host, servers).plan(host, spares)
    moves = moves_of(plan, judge_plan(plan, CapacityPolicy.PROCEED), servers, source)
    return [replace(m, message=m.message or "appeared on the host after the plan") for m in moves]


@dataclass(frozen=True)
class Survey:
    """What the plan is made from: the segment's policies, the selection, the targets."""

    policies: Policies
    selection: Selection
    targets: list[Target] | None  # None: Nova gave no hypervisor figures
    no_figures: str | None = None  # why not

    def plan(self, host: HostView, spares: list[str]) -> Plan:
        method = host.segment.recovery_method
        if self.targets is None:
            return plan_unchecked(self.selection, method, spares, self.no_figures or "unknown")
        return plan_placement(self.selection, self.targets, method, spares)


def _survey(ctx: RecoveryContext, deps: HostRecoveryDeps, host: HostView, servers: list[Server]) -> Survey:
    """The segment's policies, the targets Nova reports, and the selection of `servers`.

    Without hypervisor figures (Nova's policy refuses the listing to our account, or the call
    keeps failing) the plan cannot check room, but the host is still dead: the recovery goes
    on as Masakari's would, with the method's routes and Nova deciding, never stopped by a
    forecast it could not make."""
    chosen = policies(host, deps.settings.evacuation, deps.settings.instance.ha_metadata_key)
    found: list[Target] | None
    no_figures = None
    try:
        found = targets(ctx, deps, host.spec.name)
    except ComputeError as exc:
        found, no_figures = None, exc.described
    selection = select_instances(
        servers,
        chosen.selection,
        failed_host=host.spec.name,
        disks={s.id: s.disks for s in servers},
        targets=found,
    )
    return Survey(chosen, selection, found, no_figures)
