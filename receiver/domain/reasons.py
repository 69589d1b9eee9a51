"""The fixed vocabulary of outcomes. Every skip, refusal and failure carries one of these:
it is the `reason` on the record, a field of the log line and a bounded metric label."""

from __future__ import annotations

import enum


class AlertOutcome(enum.StrEnum):
    """What the receiver did with one alert."""

    RECOVERY_CREATED = "recovery_created"
    DUPLICATE = "duplicate"  # same fingerprint + startsAt seen before
    LINKED_TO_OPEN = "linked_to_open"  # a recovery for the same target is still open
    RECORDED_RESOLVED = "recorded_resolved"  # resolved: informational, never un-fences
    IGNORED = "ignored"  # recorded with a reason, does not act


class Reason(enum.StrEnum):
    """Why a record ended the way it did, or why an alert does not act."""

    # intake: alerts that are recorded but never act
    NO_RECOVERY_LABEL = "no_recovery_label"
    INVALID_LABELS = "invalid_labels"
    ALERT_RESOLVED = "alert_resolved"
    FIRING_AFTER_RESOLVED = "firing_after_resolved"
    KIND_NOT_SUPPORTED = "kind_not_supported"
    # worker: gates
    HOST_NOT_IN_INVENTORY = "host_not_in_inventory"
    HOST_ON_MAINTENANCE = "host_on_maintenance"
    SEGMENT_DISABLED = "segment_disabled"
    NO_FENCE_METHOD = "no_fence_method"
    STORM_GUARD = "storm_guard"
    NOT_VERIFIED = "not_verified"
    AWAITING_APPROVAL = "awaiting_approval"
    APPROVAL_REJECTED = "approval_rejected"
    APPROVAL_EXPIRED = "approval_expired"
    SHADOW_MODE = "shadow_mode"
    ABORTED = "aborted"
    FENCE_CONFIG_INVALID = "fence_config_invalid"
    # worker: fencing
    BMC_UNREACHABLE = "bmc_unreachable"
    BMC_REFUSED = "bmc_refused"
    POWER_STILL_ON = "power_still_on"
    # worker: nova
    SERVICE_NOT_FOUND = "service_not_found"
    COMPUTE_UNAVAILABLE = "compute_unavailable"
    COMPUTE_REJECTED = "compute_rejected"
    # worker: process failures
    PROCESS_NOT_HANDLED = "process_not_handled"
    DISABLED_BY_OPERATOR = "disabled_by_operator"
    CHANGED_BY_OPERATOR = "changed_by_operator"
    LINKED_TO_HOST_RECOVERY = "linked_to_host_recovery"
    # worker: instance failures
    INSTANCE_DELETED = "instance_deleted"
    INSTANCE_NOT_EXPECTED_RUNNING = "instance_not_expected_running"
    TASK_IN_PROGRESS = "task_in_progress"
    NOT_HA_ENABLED = "not_ha_enabled"
    INSTANCE_RUNNING = "instance_running"
    CRASH_LOOP = "crash_loop"
    INSTANCE_RECOVERY_FAILED = "instance_recovery_failed"
    # worker: evacuation
    EVACUATION_FAILED = "evacuation_failed"
    NO_INSTANCES = "no_instances"
    COMPLETED = "completed"
    # boundaries
    INTERNAL_ERROR = "internal_error"
    # placement: which instances of a dead host move, and where (selection, placement, diagnosis)
    INSTANCE_IN_ERROR = "instance_in_error"  # skipped by configuration
    EXCLUDED_PROJECT = "excluded_project"  # its project's service recovers it (evacuation.exclude_projects)
    PCI_PASSTHROUGH = "pci_passthrough"  # flavor pci_passthrough:alias: the device stays on the dead host
    LOCAL_DISK = "local_disk"  # image-backed root on local storage, no volume, no shared storage
    NUMA_UNSATISFIABLE = "numa_unsatisfiable"  # pinned CPUs / NUMA nodes that no target offers
    FLAVOR_UNKNOWN = "flavor_unknown"  # the server record carries no flavor details to plan with
    INSUFFICIENT_CAPACITY = "insufficient_capacity"  # no target (or spare) with room
    NO_FREE_SPARE = "no_free_spare"  # the method needs a reserved spare and none is free
    CAPACITY_HOLD = "capacity_hold"  # the plan falls short and the segment's policy holds for approval
    RECOVERY_STOPPED = "recovery_stopped"  # a planned move never attempted: the recovery ended first
