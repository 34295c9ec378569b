"""Healthchecks through the real ``pallet`` CLI: the shim probes, inspect, ps and events show it.

No timing assertions: each test polls for the state it waits for, with a
generous deadline. The fixture removes every container and process.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from .conftest import PalletEnv

_DEADLINE = 90.0
_FAST = ("--health-interval", "1s", "--health-timeout", "5s", "--health-retries", "1")


def _state(env: PalletEnv, ref: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(env.ok("inspect", ref))[0]["State"]
    return doc


def _poll(what: str, done: Callable[[], bool]) -> None:
    deadline = time.monotonic() + _DEADLINE
    while time.monotonic() < deadline:
        if done():
            return
        time.sleep(0.2)
    raise AssertionError(f"never {what}")


def _health_becomes(env: PalletEnv, ref: str, status: str) -> dict[str, Any]:
    _poll(f"{status}", lambda: _state(env, ref).get("Health", {}).get("Status") == status)
    health: dict[str, Any] = _state(env, ref)["Health"]
    return health


def test_passing_probe_makes_the_container_healthy_in_inspect_ps_and_events(pallet_env: PalletEnv) -> None:
    cid = pallet_env.ok(
        "run", "-d", "--name", "hc-ok", "--health-cmd", "echo fine", *_FAST, "busybox", "sleep", "600"
    ).strip()
    config = json.loads(pallet_env.ok("inspect", cid))[0]["Config"]["Healthcheck"]
    assert config["Test"] == ["CMD-SHELL", "echo fine"]
    assert config["Interval"] == 1_000_000_000
    assert config["Retries"] == 1
    health = _health_becomes(pallet_env, cid, "healthy")
    assert health["FailingStreak"] == 0
    assert health["Log"][-1]["ExitCode"] == 0
    assert health["Log"][-1]["Output"] == "fine\n"
    rows = pallet_env.ok(
        "ps", "--filter", "health=healthy", "--format", "{{.Names}} {{.Status}}"
    ).splitlines()
    assert len(rows) == 1
    assert rows[0].startswith("hc-ok Up ")
    assert rows[0].endswith("(healthy)")
    assert pallet_env.ok("ps", "-q", "--filter", "health=unhealthy").strip() == ""
    until = str(int(time.time()) + 1)
    events = pallet_env.ok("events", "--since", "0", "--until", until, "--filter", "event=health_status",
                           "--format", "{{.Action}}")  # fmt: skip
    assert "health_status: healthy" in events.splitlines()
    probes = pallet_env.ok("events", "--since", "0", "--until", until, "--filter", "event=exec_die",
                           "--format", "{{.Actor.Attributes.exitCode}}")  # fmt: skip
    assert "0" in probes.split()  # each probe is an exec, as dockerd records them


def test_failing_probe_makes_the_container_unhealthy_with_its_output(pallet_env: PalletEnv) -> None:
    cid = pallet_env.ok(
        "run", "-d", "--health-cmd", "echo oops >&2; exit 3", *_FAST, "busybox", "sleep", "600"
    ).strip()
    health = _health_becomes(pallet_env, cid, "unhealthy")
    assert health["FailingStreak"] >= 1
    assert health["Log"][-1]["ExitCode"] == 3
    assert health["Log"][-1]["Output"] == "oops\n"
    status = pallet_env.ok("ps", "--filter", f"id={cid}", "--format", "{{.Status}}").strip()
    assert status.endswith("(unhealthy)")
    assert pallet_env.ok("ps", "-q", "--no-trunc", "--filter", "health=unhealthy").split() == [cid]


def test_a_probe_over_its_timeout_is_killed_and_fails(pallet_env: PalletEnv) -> None:
    cid = pallet_env.ok(
        "run", "-d", "--health-cmd", "sleep 567", "--health-interval", "1s", "--health-timeout", "1s",
        "--health-retries", "1", "busybox", "sleep", "600",
    ).strip()  # fmt: skip
    health = _health_becomes(pallet_env, cid, "unhealthy")
    assert health["Log"][0]["ExitCode"] == -1
    assert health["Log"][0]["Output"] == "Health check exceeded timeout (1s)"
    # the probe that overran is gone (a new one may be running: at most one at a time)
    _poll("at most one probe at a time", lambda: pallet_env.ok("exec", cid, "ps").count("sleep 567") <= 1)


def test_stop_ends_probing_and_start_begins_again(pallet_env: PalletEnv) -> None:
    cid = pallet_env.ok("run", "-d", "--health-cmd", "true", *_FAST, "busybox", "sleep", "600").strip()
    _health_becomes(pallet_env, cid, "healthy")
    pallet_env.ok("stop", "-t", "1", cid)
    stopped = _state(pallet_env, cid)["Health"]
    assert stopped["Status"] == "unhealthy"  # as dockerd leaves a stopped container's
    assert "health" not in pallet_env.ok("ps", "-a", "--filter", f"id={cid}", "--format", "{{.Status}}")
    time.sleep(2.5)  # no probe runs while stopped: the log stays as it was
    assert _state(pallet_env, cid)["Health"]["Log"] == stopped["Log"]
    pallet_env.ok("start", cid)
    assert _state(pallet_env, cid)["Health"]["Status"] in ("starting", "healthy")
    _health_becomes(pallet_env, cid, "healthy")


def test_starting_shows_in_ps_until_the_first_probe(pallet_env: PalletEnv) -> None:
    cid = pallet_env.ok(
        "run", "-d", "--health-cmd", "true", "--health-interval", "1h", "busybox", "sleep", "600"
    ).strip()
    assert _state(pallet_env, cid)["Health"] == {"Status": "starting", "FailingStreak": 0, "Log": []}
    status = pallet_env.ok("ps", "--filter", "health=starting", "--format", "{{.Status}}").strip()
    assert status.startswith("Up ")
    assert status.endswith("(health: starting)")


def test_no_healthcheck_disables_the_images_and_none_shows_in_filters(
    pallet_env: PalletEnv, tmp_path: Any
) -> None:
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text('FROM busybox\nHEALTHCHECK --interval=1s --retries=1 CMD ["true"]\n')
    pallet_env.ok("build", "-q", "-t", "hc-image", str(context))
    checked = pallet_env.ok("run", "-d", "hc-image", "sleep", "600").strip()
    assert json.loads(pallet_env.ok("inspect", checked))[0]["Config"]["Healthcheck"]["Test"] == [
        "CMD",
        "true",
    ]
    _health_becomes(pallet_env, checked, "healthy")
    plain = pallet_env.ok("run", "-d", "--no-healthcheck", "hc-image", "sleep", "600").strip()
    doc = json.loads(pallet_env.ok("inspect", plain))[0]
    assert doc["Config"]["Healthcheck"]["Test"] == ["NONE"]
    assert "Health" not in doc["State"]
    assert pallet_env.ok("ps", "-q", "--no-trunc", "--filter", "health=none").split() == [plain]


def test_bad_health_flags_are_refused_in_dockers_words(pallet_env: PalletEnv) -> None:
    for flags, words in (
        (("--no-healthcheck", "--health-cmd", "true"), "--no-healthcheck conflicts with --health-* options"),
        (("--health-interval", "-1s"), "--health-interval cannot be negative"),
        (("--health-timeout", "10us"), "Timeout in Healthcheck cannot be less than 1ms"),
        (("--health-retries", "-2"), "--health-retries cannot be negative"),
        (("--health-start-period", "soon"), 'invalid argument "soon" for "--health-start-period" flag'),
    ):
        done = pallet_env.pallet("create", *flags, "busybox", "true")
        assert done.returncode == 125, done
        assert words in done.stderr
    assert pallet_env.container_ids() == []
    done = pallet_env.pallet("ps", "--filter", "health=sick")
    assert done.returncode != 0
    assert "health" in done.stderr


def test_a_shell_form_check_runs_in_the_images_shell(pallet_env: PalletEnv, tmp_path: Any) -> None:
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(
        'FROM busybox\nSHELL ["/bin/echo", "via-shell"]\nHEALTHCHECK --interval=1s --retries=1 CMD hello\n'
    )
    pallet_env.ok("build", "-q", "-t", "hc-shell", str(context))
    cid = pallet_env.ok("run", "-d", "hc-shell", "sleep", "600").strip()
    assert json.loads(pallet_env.ok("inspect", cid))[0]["Config"]["Shell"] == ["/bin/echo", "via-shell"]
    health = _health_becomes(pallet_env, cid, "healthy")
    assert health["Log"][-1]["Output"] == "via-shell hello\n"


def test_the_library_takes_the_sdks_healthcheck_and_shows_health(pallet_env: PalletEnv) -> None:
    import pallet

    client = pallet.Client(root=pallet_env.root, run_root=pallet_env.run_root)
    container = client.containers.run(
        "busybox", ["sleep", "600"], detach=True,
        healthcheck={"test": "exit 0", "interval": 1_000_000_000, "retries": 1},
    )  # fmt: skip

    def healthy() -> bool:
        container.reload()
        return container.health == "healthy"

    _poll("healthy", healthy)
    assert container.attrs["Config"]["Healthcheck"]["Test"] == ["CMD-SHELL", "exit 0"]
    assert client.containers.run("busybox", ["sleep", "600"], detach=True).health == "unknown"
