"""The one typed, validated settings object, read once at start.

Sources, later ones winning: defaults, the YAML file named by ``LAZARUS_CONFIG``, then
environment variables ``LAZARUS_<KEY>`` with ``__`` between nested keys
(``LAZARUS_FENCING__POWER_OFF_TIMEOUT_S=20``). A bad value is a `ConfigError` that names
the key. Secrets are `SecretStr` and never appear in repr or logs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from receiver.errors import ConfigError
from receiver.notify.config import NotifierConfig, Notifiers, NotifySettings

ENV_PREFIX = "LAZARUS_"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WebhookSettings(_Section):
    """Who may post alerts, and how alert labels map to failures."""

    bearer_tokens: list[SecretStr] = Field(default_factory=list)
    bearer_token_files: list[Path] = Field(default_factory=list)
    basic_users: dict[str, SecretStr] = Field(default_factory=dict)
    allow_unauthenticated: bool = False
    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    recovery_label: str = "recovery"
    host_label: str = "host"
    instance_label: str = "uuid"
    process_label: str = "process"

    def all_tokens(self) -> list[str]:
        """Tokens from settings plus those read from files (whitespace trimmed)."""
        tokens = [t.get_secret_value() for t in self.bearer_tokens]
        for path in self.bearer_token_files:
            try:
                tokens.append(path.read_text().strip())
            except OSError as exc:
                raise ConfigError(f"webhook.bearer_token_files: cannot read {path}: {exc.strerror}") from exc
        return [t for t in tokens if t]


class FencingSettings(_Section):
    """How long and how often to insist before a host counts as proven off."""

    bmc_timeout_s: float = Field(default=5.0, gt=0)
    power_off_timeout_s: float = Field(default=30.0, gt=0)
    power_off_attempts: int = Field(default=3, ge=1, le=10)
    poll_interval_s: float = Field(default=1.0, gt=0)
    redfish_ca_file: Path | None = None  # the site CA that signs BMC certificates (else the system store)


class StormSettings(_Section):
    """Safety rule 6: how many failing hosts at once mean a broken observer rather than a broken cloud."""

    max_fences: int = Field(default=3, ge=1)
    window_s: float = Field(default=900.0, gt=0)
    max_down_share: float = Field(default=0.34, gt=0, le=1)
    cliff_count: int = Field(default=3, ge=2)
    cliff_window_s: float = Field(default=60.0, gt=0)
    cooldown_s: float = Field(default=900.0, ge=0)


class VerifySettings(_Section):
    """Re-verification just before fencing: independent signals must still say the host is down."""

    heartbeat_stale_s: float = Field(default=60.0, gt=0)  # Nova agrees if the last heartbeat is older
    wait_s: float = Field(default=120.0, ge=0)  # how long to wait for the signals to agree
    poll_interval_s: float = Field(default=2.0, gt=0)
    min_agree: int | None = Field(default=None, ge=1)  # None: every signal asked must agree
    prometheus_url: str = ""  # when set, the alert must still be firing there


class ApprovalSettings(_Section):
    """When a human must say yes before a host is fenced, and how long the question stays open."""

    required: bool = False  # every host recovery waits for approval
    max_instances: int = Field(default=0, ge=0)  # more instances on the host: approval (0: no limit)
    max_hosts_in_flight: int = Field(default=0, ge=0)  # more host recoveries open: approval (0: no limit)
    expire_s: float = Field(default=3600.0, gt=0)
    # When every fence method fails: wait for an operator to confirm the host is off instead of
    # failing the recovery (either way nothing is evacuated without proof).
    on_fence_failure: bool = False


class EvacuationSettings(_Section):
    """Which instances of a dead host move, where, and how (a segment may override the first four)."""

    # Every instance, not only those with metadata HA_Enabled=True (Masakari's evacuate_all_instances).
    evacuate_all: bool = False
    # Skip instances in ERROR (Masakari's ignore_instances_in_error_state).
    skip_error_instances: bool = False
    # The instances' disks are on shared storage (Ceph, NFS): an image-backed instance keeps its
    # data when evacuated. Off, such an instance without a volume is recorded as not evacuable:
    # Nova would rebuild it from its image and its data would be gone.
    shared_storage: bool = False
    # Project IDs whose instances are never evacuated: another service recovers them (Octavia's
    # amphorae: evacuate rebuilds one without the config Octavia injected and its load balancer
    # stays in ERROR; Octavia's health manager replaces it). Recorded as left by policy.
    exclude_projects: list[str] = Field(default_factory=list)
    # A capacity plan that falls short: proceed | proceed_with_what_fits | hold_for_approval.
    capacity_policy: str = Field(
        default="proceed", pattern="^(proceed|proceed_with_what_fits|hold_for_approval)$"
    )
    concurrency: int = Field(default=4, ge=1, le=64)
    timeout_s: float = Field(default=600.0, gt=0)
    poll_interval_s: float = Field(default=1.0, gt=0)
    max_attempts: int = Field(default=2, ge=1, le=5)  # evacuations per instance, on another target if allowed
    lock_instances: bool = True  # lock each instance during its move (reason names the record)
    # Add a used reserved spare to the failed host's aggregates first (Masakari's option of that name).
    add_reserved_host_to_aggregate: bool = False
    # Nova's allocation ratios, which os-hypervisors does not report (Nova's defaults).
    cpu_allocation_ratio: float = Field(default=4.0, gt=0)
    ram_allocation_ratio: float = Field(default=1.0, gt=0)
    disk_allocation_ratio: float = Field(default=1.0, gt=0)


class ProcessSettings(_Section):
    """A dead nova-compute on a live host: disable, wait for Nova to see it up, re-enable."""

    # Off by default. e.g. [ssh, "{host}", systemctl, restart, nova-compute]; run without a shell.
    restart_command: list[str] = Field(default_factory=list)
    restart_timeout_s: float = Field(default=60.0, gt=0)
    poll_interval_s: float = Field(default=5.0, gt=0)
    recheck_window_s: float = Field(default=60.0, gt=0)  # one job watches this long, then sleeps
    recheck_interval_s: float = Field(default=30.0, gt=0)


class InstanceSettings(_Section):
    """A crashed instance: stop/start (or hard reboot) it and confirm ACTIVE."""

    method: str = Field(default="stop_start", pattern="^(stop_start|hard_reboot)$")
    all_instances: bool = False
    ha_metadata_key: str = "HA_Enabled"
    timeout_s: float = Field(default=300.0, gt=0)
    poll_interval_s: float = Field(default=1.0, gt=0)
    confirm_s: float = Field(default=60.0, ge=0)  # how long to wait for Nova's record to catch up
    crash_loop_max: int = Field(default=3, ge=1)
    crash_loop_window_s: float = Field(default=3600.0, gt=0)


class NovaSettings(_Section):
    """openstacksdk's clouds.yaml entry (None: OS_CLOUD / the environment decides)."""

    cloud: str | None = None
    compute_api_version: str = "2.94"
    timeout_s: float = Field(default=30.0, gt=0)
    # A host in the inventory must be one Nova has a nova-compute service for, as Masakari
    # requires: a misspelt name otherwise shows only the night that host fails. Off: register
    # hosts before their nova-compute is deployed.
    require_compute_hosts: bool = True


class ServeSettings(_Section):
    bind: str = "127.0.0.1:8080"
    workers: int = Field(default=2, ge=1, le=64)
    timeout_s: int = Field(default=30, ge=1)


class ProbeSettings(_Section):
    """The periodic, read-only BMC probe: a broken BMC is found before the night it is needed."""

    enabled: bool = True
    interval_s: float = Field(default=300.0, gt=0)
    parallel: int = Field(default=8, ge=1, le=64)
    max_age_s: float = Field(default=3600.0, gt=0)


class WorkerSettings(_Section):
    lease_ttl_s: float = Field(default=20.0, ge=2)
    retention_s: float = Field(default=90 * 86400.0, gt=0)  # ended records older than this are deleted
    reconcile_interval_s: float = Field(default=10.0, gt=0)
    job_timeout_s: int = Field(default=3600, ge=60)


class Settings(BaseSettings):
    """Everything Lazarus reads from its environment, validated once."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    redis_url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")
    redis_sentinels: list[str] = Field(default_factory=list)
    redis_sentinel_master: str = "mymaster"
    redis_socket_timeout_s: float = Field(default=0.5, gt=0)
    queue_name: str = "lazarus"
    key_prefix: str = "lazarus"
    alert_dedup_ttl_s: int = Field(default=7 * 24 * 3600, ge=60)
    log_level: str = "INFO"
    log_json: bool = True
    public_url: str = ""

    webhook: WebhookSettings = WebhookSettings()
    fencing: FencingSettings = FencingSettings()
    storm: StormSettings = StormSettings()
    verify: VerifySettings = VerifySettings()
    approval: ApprovalSettings = ApprovalSettings()
    shadow: bool = False  # run the whole pipeline, record what would be done, touch nothing
    evacuation: EvacuationSettings = EvacuationSettings()
    process: ProcessSettings = ProcessSettings()
    instance: InstanceSettings = InstanceSettings()
    nova: NovaSettings = NovaSettings()
    serve: ServeSettings = ServeSettings()
    worker: WorkerSettings = WorkerSettings()
    probe: ProbeSettings = ProbeSettings()
    notifiers: Notifiers = Field(default_factory=list)  # receiver/notify/config.py has the format
    notify: NotifySettings = NotifySettings()

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        upper = value.upper()
        if upper not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR")
        return upper

    @field_validator("key_prefix", "queue_name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if not value or not all(c.isalnum() or c in "-_" for c in value):
            raise ValueError("must be letters, digits, '-' or '_'")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Explicit values (the YAML file, tests) first, then the environment on top.
        return (env_settings, init_settings)

    def secrets(self) -> list[str]:
        """Every secret value, so the log filter can scrub them as a last line of defence."""
        values = [self.redis_url.get_secret_value()]
        values += [t.get_secret_value() for t in self.webhook.bearer_tokens]
        values += [p.get_secret_value() for p in self.webhook.basic_users.values()]
        return (
            [v for v in values if len(v) >= 6 and "://" not in v]
            + _url_passwords(values[0])
            + [part for n in self.notifiers for part in _notifier_secret_parts(n)]
        )


def _notifier_secret_parts(notifier: NotifierConfig) -> list[str]:
    """A notifier's secret as the scrubber needs it; unreadable now means nothing to scrub yet."""
    try:
        value = notifier.secret_ref().resolve(notifier.name).reveal()
    except ConfigError:
        return []
    return [p for p in notifier.secret_parts(value) if len(p) >= 6 and "://" not in p]


def _url_passwords(url: str) -> list[str]:
    if "@" not in url or ":" not in url.split("@", 1)[0].split("//", 1)[-1]:
        return []
    password = url.split("@", 1)[0].split("//", 1)[-1].split(":", 1)[1]
    return [password] if password else []


def load_settings(**overrides: Any) -> Settings:
    """Read and validate settings from the file and the environment; ConfigError names the bad key."""
    import os

    file_values: dict[str, Any] = {}
    config_path = os.environ.get(f"{ENV_PREFIX}CONFIG")
    if config_path:
        file_values = _read_yaml(Path(config_path))
    file_values.update(overrides)
    try:
        return Settings(**file_values)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{ENV_PREFIX}CONFIG: cannot read {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{ENV_PREFIX}CONFIG: {path} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{ENV_PREFIX}CONFIG: {path} must hold a mapping at the top level")
    return data


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"]) or "(root)"
        env_name = ENV_PREFIX + "__".join(str(p).upper() for p in error["loc"])
        problems.append(f"{key} (env {env_name}): {error['msg']}")
    return "invalid settings: " + "; ".join(problems)
