"""deploy/compose_test.py's own logic, without containers (`make compose-test` runs them).

The compose test itself is not collected by pytest: it builds images and starts the topology.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from deploy import compose_test

ROOT = Path(__file__).resolve().parents[2]


class FakeCompose(compose_test.Compose):
    """`compose ps --format json` answering what a real engine printed."""

    def __init__(self, output: str) -> None:
        self.output = output

    def __call__(self, *args, **kwargs):
        return subprocess.CompletedProcess(args, 0, self.output, "")


def test_health_from_podman_compose_ps():
    rows = [  # podman ps --format json, as podman-compose 1.6 passes it on
        {
            "Labels": {"com.docker.compose.service": "tasks"},
            "Status": "Up 2 minutes (healthy)",
        },
        {"Labels": {"com.docker.compose.service": "worker"}, "Status": "Up 5 seconds (starting)"},
        {"Labels": {"com.docker.compose.service": "beat"}, "Status": "Up 1 minute (unhealthy)"},
        {
            "Labels": {"com.docker.compose.service": "migrate"},
            "Status": "Exited (0) 1 minute ago",
            "State": "exited",
        },
    ]
    health = compose_test.service_health(FakeCompose(json.dumps(rows)))
    assert health == {
        "tasks": "healthy",
        "worker": "starting",
        "beat": "unhealthy",
        "migrate": "exited",
    }


def test_health_from_docker_compose_ps():
    lines = [  # docker compose v2: one object a line
        {"Service": "tasks", "Health": "healthy", "State": "running"},
        {
            "Service": "gateway",
            "Health": "",
            "State": "running",
            "Status": "Up 3 seconds (health: starting)",
        },
    ]
    output = "\n".join(json.dumps(line) for line in lines)
    assert compose_test.service_health(FakeCompose(output)) == {
        "tasks": "healthy",
        "gateway": "starting",
    }


def test_the_compose_command_gets_the_project_folder_where_it_takes_one(tmp_path):
    script = tmp_path / "compose.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    project = tmp_path / "project"
    assert compose_test.Compose(str(script), project).words == [str(script), str(project)]
    assert compose_test.Compose(f"{script} -x {{dir}}", project).words == [
        str(script),
        "-x",
        str(project),
    ]
    assert compose_test.Compose("sh -c true", project).words == ["sh", "-c", "true"]
    with pytest.raises(compose_test.ToolMissing, match="not installed"):
        compose_test.Compose("no-such-compose-command", project)


def test_a_missing_tool_is_said_plainly_and_exits_2():
    result = subprocess.run(
        [sys.executable, "deploy/compose_test.py"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "COMPOSE": "no-such-compose-command"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "needs a container engine with compose" in result.stderr
    assert "`no-such-compose-command` is not installed" in result.stderr


def test_pytest_does_not_collect_the_compose_test():
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "--no-cov", "deploy"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert "compose_test" not in result.stdout
