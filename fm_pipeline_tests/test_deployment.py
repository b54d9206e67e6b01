"""Static checks of the team deployment: docker-compose.yml, the Dockerfile and the Dagster instance config."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKER_DIR = REPO_ROOT / "docker"
DAGSTER_YAML = DOCKER_DIR / "dagster.yaml"
WORKSPACE_YAML = DOCKER_DIR / "workspace.yaml"
MLFLOW_DB_INIT = DOCKER_DIR / "postgres-init" / "01-create-mlflow-db.sh"
ENV_EXAMPLE = REPO_ROOT / ".env.example"

SERVICES = ("postgres", "mlflow", "user_code", "webserver", "daemon")
DAGSTER_HOME = "/opt/dagster/dagster_home"
SECRET_KEY = re.compile(r"PASSWORD|SECRET|TOKEN", re.IGNORECASE)
ENV_REFERENCE = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*(?:(?::?[-?])[^}]*)?\}$")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


@pytest.fixture(scope="module")
def dagster_yaml() -> dict[str, Any]:
    return yaml.safe_load(DAGSTER_YAML.read_text())


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def _volume_entries(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, target) of each mount, short or long syntax."""
    entries = []
    for volume in service.get("volumes") or []:
        if isinstance(volume, str):
            parts = volume.split(":")
            entries.append((parts[0], parts[1]) if len(parts) > 1 else ("", parts[0]))
        else:
            entries.append((str(volume.get("source", "")), str(volume["target"])))
    return entries


def _command_text(value: str | list[str] | None) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else " ".join(value)


def _dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with backslash continuations joined and comments dropped."""
    logical, current = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        keyword, _, rest = current.partition(" ")
        logical.append((keyword.upper(), rest.strip()))
        current = ""
    return logical


def test_services_exist(services: dict[str, Any]) -> None:
    assert set(SERVICES) <= set(services), f"missing services: {set(SERVICES) - set(services)}"


def test_published_ports_bound_to_loopback(services: dict[str, Any]) -> None:
    published = 0
    for name, service in services.items():
        for port in service.get("ports") or []:
            published += 1
            if isinstance(port, dict):
                assert port.get("host_ip") == "127.0.0.1", f"{name}: {port} is not bound to 127.0.0.1"
            else:
                assert str(port).startswith("127.0.0.1:"), f"{name}: {port!r} is not bound to 127.0.0.1"
    assert published, "expected the webserver and MLflow to be published"
    assert "ports" not in services["postgres"], "PostgreSQL must not be published"


def test_named_volumes_declared_and_used(compose: dict[str, Any], services: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    used = {
        source
        for service in services.values()
        for source, _ in _volume_entries(service)
        if source and not source.startswith((".", "/", "~"))
    }
    assert {"postgres_data", "mlflow_artifacts", "lake"} <= declared
    assert used <= declared, f"volumes used but not declared: {used - declared}"
    assert declared <= used, f"volumes declared but never mounted: {declared - used}"
    assert ("lake", "/opt/fm_pipeline/data") in _volume_entries(services["user_code"])
    assert _environment(services["user_code"])["FM_PIPELINE_HOME"] == "/opt/fm_pipeline/data"
    assert ("postgres_data", "/var/lib/postgresql/data") in _volume_entries(services["postgres"])


@pytest.mark.parametrize("name", ["postgres", "mlflow", "user_code", "webserver"])
def test_healthchecks(services: dict[str, Any], name: str) -> None:
    healthcheck = services[name].get("healthcheck")
    assert healthcheck and healthcheck.get("test"), f"{name} has no healthcheck"
    assert not healthcheck.get("disable"), f"{name} disables its healthcheck"


def test_healthcheck_commands(services: dict[str, Any]) -> None:
    assert "pg_isready" in _command_text(services["postgres"]["healthcheck"]["test"])
    assert "grpc-health-check -p 4000" in _command_text(services["user_code"]["healthcheck"]["test"])


def test_depends_on_waits_for_health(services: dict[str, Any]) -> None:
    for name in ("mlflow", "user_code", "webserver", "daemon"):
        depends_on = services[name].get("depends_on")
        assert isinstance(depends_on, dict) and depends_on, f"{name}: depends_on must name conditions"
        for dependency, condition in depends_on.items():
            assert dependency in services
            assert condition == {"condition": "service_healthy"}, f"{name} -> {dependency}: {condition}"
    assert "postgres" in services["mlflow"]["depends_on"]
    assert "user_code" in services["webserver"]["depends_on"]
    assert "user_code" in services["daemon"]["depends_on"]


def test_webserver_and_daemon_share_instance_config(services: dict[str, Any]) -> None:
    mounts = {name: dict(_volume_entries(services[name])) for name in ("webserver", "daemon")}
    for filename in ("dagster.yaml", "workspace.yaml"):
        target = f"{DAGSTER_HOME}/{filename}"
        sources = {name: {s for s, t in _volume_entries(services[name]) if t == target} for name in mounts}
        assert sources["webserver"] == sources["daemon"] == {f"./docker/{filename}"}, sources
        assert (REPO_ROOT / "docker" / filename).is_file()

    assert _command_text(services["webserver"]["command"]).startswith("dagster-webserver")
    assert f"-w {DAGSTER_HOME}/workspace.yaml" in _command_text(services["webserver"]["command"])
    assert "dagster-daemon run" in _command_text(services["daemon"]["command"])
    assert services["webserver"].get("environment") == services["daemon"].get("environment")


def test_user_code_service(services: dict[str, Any]) -> None:
    user_code = services["user_code"]
    env = _environment(user_code)
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    for var in ("USER", "PASSWORD", "HOSTNAME", "DB", "PORT"):
        assert f"DAGSTER_POSTGRES_{var}" in env
    assert "build" in user_code


def test_workspace_loads_user_code_grpc_server() -> None:
    workspace = yaml.safe_load(WORKSPACE_YAML.read_text())
    assert workspace["load_from"] == [
        {"grpc_server": {"host": "user_code", "port": 4000, "location_name": "fm_pipeline"}}
    ]


def test_no_literal_credentials_in_compose(compose: dict[str, Any], services: dict[str, Any]) -> None:
    for name, service in services.items():
        for key, value in _environment(service).items():
            if SECRET_KEY.search(key):
                assert ENV_REFERENCE.match(value), f"{name}: {key} must come from ${{...}}, not a literal"
    text = COMPOSE_FILE.read_text()
    # No `user:password@` in a connection URI, and none of the example's placeholder values.
    assert not re.search(r"://[^/\s:@]+:[^/\s@]+@", text), "connection URI with an inline password"
    example = dict(
        line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines() if "=" in line and line[0] != "#"
    )
    for key, value in example.items():
        if SECRET_KEY.search(key):
            assert value not in text, f"the placeholder {key} value appears in docker-compose.yml"


def test_env_example_lists_every_variable() -> None:
    referenced = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", COMPOSE_FILE.read_text()))
    example = {line.split("=", 1)[0] for line in ENV_EXAMPLE.read_text().splitlines() if "=" in line and line[0] != "#"}
    assert referenced <= example, f"not in .env.example: {referenced - example}"


def test_mlflow_service(services: dict[str, Any]) -> None:
    mlflow = services["mlflow"]
    command = _command_text(mlflow["command"])
    assert command.startswith("mlflow server")
    assert "--host=0.0.0.0" in command and "--port=5000" in command
    assert re.search(r"--backend-store-uri=postgresql\+psycopg2://\$\{POSTGRES_USER[^}]*\}@postgres:5432/", command)
    assert "--artifacts-destination=/mlflow/artifacts" in command
    assert "mlflow" in command.split("--allowed-hosts=", 1)[1], "other containers reach MLflow as `mlflow`"
    assert ("mlflow_artifacts", "/mlflow/artifacts") in _volume_entries(mlflow)
    init_mounts = [s for s, t in _volume_entries(services["postgres"]) if t == "/docker-entrypoint-initdb.d"]
    assert init_mounts == ["./docker/postgres-init"]
    assert "CREATE DATABASE" in MLFLOW_DB_INIT.read_text()
    assert os.access(MLFLOW_DB_INIT, os.X_OK), "the postgres entrypoint runs executable init scripts"


def test_dagster_yaml_uses_postgres_from_env(dagster_yaml: dict[str, Any]) -> None:
    postgres_db = dagster_yaml["storage"]["postgres"]["postgres_db"]
    for field, var in {
        "username": "DAGSTER_POSTGRES_USER",
        "password": "DAGSTER_POSTGRES_PASSWORD",
        "hostname": "DAGSTER_POSTGRES_HOSTNAME",
        "db_name": "DAGSTER_POSTGRES_DB",
        "port": "DAGSTER_POSTGRES_PORT",
    }.items():
        assert postgres_db[field] == {"env": var}


def test_postgres_uris_name_an_installed_driver(dagster_yaml: dict[str, Any], services: dict[str, Any]) -> None:
    """SQLAlchemy 2.1 maps a bare `postgresql://` to psycopg 3, which is not installed: name psycopg2."""
    from sqlalchemy.engine import make_url

    mlflow_uri = _command_text(services["mlflow"]["command"]).split("--backend-store-uri=", 1)[1].split()[0]
    schemes = {
        "dagster.yaml": dagster_yaml["storage"]["postgres"]["postgres_db"].get("scheme", "postgresql"),
        "mlflow --backend-store-uri": mlflow_uri.split("://", 1)[0],
    }
    for where, scheme in schemes.items():
        assert scheme == "postgresql+psycopg2", f"{where}: {scheme}"
        make_url(f"{scheme}://user@host/db").get_dialect().import_dbapi()


def test_dagster_yaml_run_queue_and_gpu_pool(dagster_yaml: dict[str, Any], services: dict[str, Any]) -> None:
    assert dagster_yaml["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert dagster_yaml["concurrency"]["runs"]["max_concurrent_runs"] >= 1
    assert "run_launcher" not in dagster_yaml or dagster_yaml["run_launcher"]["class"] == "DefaultRunLauncher"
    assert dagster_yaml["telemetry"] == {"enabled": False}
    # Dagster's instance schema has no per-pool limits: every pool, `gpu` included, starts at one slot, and
    # the daemon pins `gpu` to 1 in the database before it starts.
    assert dagster_yaml["concurrency"]["pools"]["default_limit"] == 1
    assert "dagster instance concurrency set gpu 1" in _command_text(services["daemon"]["command"])


def test_dagster_yaml_matches_dagster_instance_schema() -> None:
    """Loads docker/dagster.yaml the way DagsterInstance does, without connecting to PostgreSQL."""
    from dagster._config import validate_config
    from dagster._core.instance.config import dagster_instance_config
    from dagster._core.instance.ref import InstanceRef
    from dagster._serdes.config_class import class_from_code_pointer

    config, custom_instance_class = dagster_instance_config(str(DOCKER_DIR), "dagster.yaml")
    assert custom_instance_class is None
    assert "postgres" in config["storage"]

    ref = InstanceRef.from_dir(str(DOCKER_DIR), config_dir=str(DOCKER_DIR))
    assert ref.storage_data.class_name == "DagsterPostgresStorage"
    for data in (
        ref.storage_data,
        ref.run_coordinator_data,
        ref.run_launcher_data,
        ref.local_artifact_storage_data,
        ref.compute_logs_data,
    ):
        configurable = class_from_code_pointer(data.module_name, data.class_name)
        result = validate_config(configurable.config_type(), yaml.safe_load(data.config_yaml))
        assert result.success, f"{data.class_name}: {[error.message for error in result.errors]}"


def test_dockerfile_runs_code_server() -> None:
    instructions = _dockerfile_instructions(DOCKERFILE.read_text())
    assert instructions[0] == ("FROM", "python:3.11-slim")
    by_keyword: dict[str, list[str]] = {}
    for keyword, args in instructions:
        by_keyword.setdefault(keyword, []).append(args)

    cmd = by_keyword.get("ENTRYPOINT", [])[-1:] + by_keyword["CMD"][-1:]
    argv = [arg for part in cmd for arg in json.loads(part)]
    assert argv[:3] == ["dagster", "code-server", "start"]
    assert argv[argv.index("-m") + 1] == "fm_pipeline.definitions"
    assert argv[argv.index("-p") + 1] == "4000"
    assert argv[argv.index("-h") + 1] == "0.0.0.0"

    assert "/opt/fm_pipeline" in by_keyword["WORKDIR"]
    env = " ".join(by_keyword["ENV"])
    assert "DAGSTER_HOME=/opt/dagster/dagster_home" in env
    assert "FM_PIPELINE_HOME=/opt/fm_pipeline/data" in env
    users = by_keyword.get("USER", [])
    assert users and users[-1] not in ("root", "0"), "the image must run as a non-root user"
    assert any("-c constraints.txt" in run for run in by_keyword["RUN"])


def test_docker_compose_config_validates(tmp_path: Path) -> None:
    docker_compose = shutil.which("docker-compose")
    if docker_compose is None:
        pytest.skip("docker-compose is not installed; `docker-compose config -q` validation not run")

    empty_env_file = tmp_path / "empty.env"  # keeps a developer's own .env out of the check
    empty_env_file.write_text("")
    base = [docker_compose, "--project-directory", str(REPO_ROOT), "-f", str(COMPOSE_FILE)]
    env = {key: value for key, value in os.environ.items() if not key.startswith(("POSTGRES_", "MLFLOW_"))}

    ok = subprocess.run(
        [*base, "--env-file", str(empty_env_file), "config", "-q"],
        env={**env, "POSTGRES_USER": "fm_pipeline", "POSTGRES_PASSWORD": "test-only"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ok.returncode == 0, ok.stderr

    with_example = subprocess.run(
        [*base, "--env-file", str(ENV_EXAMPLE), "config", "-q"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert with_example.returncode == 0, with_example.stderr

    missing_password = subprocess.run(
        [*base, "--env-file", str(empty_env_file), "config", "-q"],
        env={**env, "POSTGRES_USER": "fm_pipeline"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing_password.returncode != 0, "POSTGRES_PASSWORD must be required"
    assert "POSTGRES_PASSWORD" in missing_password.stderr


def _rendered(tmp_path: Path, extra_env: dict[str, str] | None = None) -> dict[str, Any]:
    """docker-compose.yml as `docker-compose config` renders it (variables substituted, anchors merged)."""
    docker_compose = shutil.which("docker-compose")
    if docker_compose is None:
        pytest.skip("docker-compose is not installed (`make test-deps` installs it)")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("POSTGRES_", "MLFLOW_", "FM_"))}
    rendered = subprocess.run(
        [docker_compose, "--project-directory", str(REPO_ROOT), "-f", str(COMPOSE_FILE), "--env-file",
         str(ENV_EXAMPLE), "config"],
        env={**env, **(extra_env or {})}, capture_output=True, text=True, timeout=120,
    )
    assert rendered.returncode == 0, rendered.stderr
    return yaml.safe_load(rendered.stdout)


def test_rendered_compose_shares_instance_storage_and_mlflow(tmp_path: Path) -> None:
    """The webserver, the daemon and the user code see one Dagster instance (the same dagster.yaml, PostgreSQL
    database and artifact volume) and one MLflow server; the user code also has the lake and the corpora."""
    config = _rendered(tmp_path)
    services = config["services"]
    dagster = ("webserver", "daemon", "user_code")
    mounts = {name: {target: source for source, target in _volume_entries(services[name])} for name in dagster}
    for name in dagster:
        assert mounts[name][f"{DAGSTER_HOME}/dagster.yaml"] == str(DAGSTER_YAML), name
        assert mounts[name]["/opt/dagster/storage"] == "dagster_storage", name
    assert "dagster_storage" in config["volumes"]
    envs = {name: _environment(services[name]) for name in dagster}
    storage = {name: {k: v for k, v in env.items() if k.startswith("DAGSTER_POSTGRES_")} for name, env in envs.items()}
    assert storage["webserver"] == storage["daemon"] == storage["user_code"]
    assert storage["user_code"]["DAGSTER_POSTGRES_HOSTNAME"] == "postgres"
    assert storage["user_code"]["DAGSTER_POSTGRES_PASSWORD"] == "change-me", "from .env.example, substituted"
    assert {env["MLFLOW_TRACKING_URI"] for env in envs.values()} == {"http://mlflow:5000"}
    assert "--port=5000" in services["mlflow"]["command"]
    assert services["user_code"]["depends_on"]["mlflow"] == {"condition": "service_healthy"}
    code = envs["user_code"]
    assert code["FM_PIPELINE_AUTOMATION"] == "on" and code["FM_PIPELINE_TIMEZONE"] == "UTC"
    assert mounts["user_code"]["/opt/fm_pipeline/data"] == "lake"
    for var, sample in (("FM_RAW_CORPUS", "raw"), ("FM_DOMAIN_CORPUS", "domain")):
        assert mounts["user_code"][code[var]] == str(REPO_ROOT / "fm_pipeline" / "sample_data" / sample)
    paris = _rendered(tmp_path, {"FM_PIPELINE_TIMEZONE": "Europe/Paris"})
    assert _environment(paris["services"]["user_code"])["FM_PIPELINE_TIMEZONE"] == "Europe/Paris"
