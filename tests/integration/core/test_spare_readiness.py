"""A reserved spare whose nova-compute is down is not a free spare: the readiness round (run
by the BMC prober) finds it through the lab's compute API (real HTTP), and the gauge, its
alert's input, and `lazarus segment show` stop counting it, before the night it is needed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from receiver import jobs
from receiver.cli import main, probe_round
from receiver.lab.testing import wait_until
from receiver.monitoring.spare_readiness import ReadinessStore
from tests.integration.core.lab_fixtures import LabRig, lab_rig, lab_settings
from tests.integration.core.test_spare_gauges import free

pytestmark = pytest.mark.integration
__all__ = ["lab_rig", "lab_settings"]
SPARES = ("spare-01", "spare-02")
OPTIONS = {"hosts": ("node-01", "node-02", *SPARES), "spares": SPARES, "recovery_method": "reserved_host"}


def check(rig: LabRig) -> dict[str, str]:
    """The worker's prober round (BMCs, then spares), and the spares' verdict it stored."""
    probe_round(rig.services)()
    found = ReadinessStore(rig.services.redis, rig.services.settings.key_prefix).load()
    assert found is not None
    return dict(found.unready)


@pytest.mark.parametrize("lab_options", [OPTIONS], indirect=True)
def test_a_spare_whose_nova_compute_died_is_not_counted_free(
    lab_rig: LabRig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert check(lab_rig) == {}
    assert free(lab_rig.services) == {"lab": 2.0}
    lab_rig.control.compute("spare-02", running=False)
    wait_until(lambda: lab_rig.service("spare-02")["state"] == "down", timeout=30, what="spare-02 down")
    assert check(lab_rig) == {"spare-02": "its nova-compute is down"}
    assert free(lab_rig.services) == {"lab": 1.0}

    settings = lab_rig.services.settings
    config = tmp_path / "lazarus.yaml"
    values = {"redis_url": settings.redis_url.get_secret_value(), "key_prefix": settings.key_prefix}
    config.write_text(yaml.safe_dump(values))
    monkeypatch.setenv("LAZARUS_CONFIG", str(config))
    shown = CliRunner().invoke(main, ["segment", "show", "lab", "--json"])
    assert shown.exit_code == 0, shown.output
    spares = json.loads(shown.output)["segment"]["spares"]
    assert spares["free"] == ["spare-01"]
    assert spares["not_ready"]["spare-02"].startswith("its nova-compute is down (checked ")
    assert "spare-02 not ready: its nova-compute is down" in spares["message"]

    lab_rig.control.compute("spare-02", running=True)
    wait_until(lambda: lab_rig.service("spare-02")["state"] == "up", timeout=30, what="spare-02 up")
    assert check(lab_rig) == {}
    assert free(lab_rig.services) == {"lab": 2.0}


@pytest.mark.parametrize("lab_options", [OPTIONS], indirect=True)
def test_a_forked_work_horse_opens_its_own_nova_connection(lab_rig: LabRig) -> None:
    """The prober uses Nova in the worker process; RQ forks a work-horse per job from it. The
    child must not reuse the parent's connection (its pooled sockets are shared after fork)."""
    jobs.configure(lab_rig.services)
    parents = lab_rig.services.compute()
    probe_round(lab_rig.services)()  # the parent's connection is now in use
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # the work-horse
        try:
            fresh = lab_rig.services.compute()
            answer = b"own" if fresh is not parents and fresh.compute_services() else b"shared"
        except BaseException:
            answer = b"error"
        os.write(writer, answer)
        os._exit(0)
    os.close(writer)
    _, status = os.waitpid(child, 0)
    assert os.read(reader, 16) == b"own" and os.waitstatus_to_exitcode(status) == 0
    assert lab_rig.services.compute() is parents  # the parent keeps its own
