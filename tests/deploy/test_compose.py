"""docker-compose.yml, .env.example and deploy/Dockerfile, checked without Docker.

No Docker engine runs here, so the stack is verified by contract: every service
is complete (image or build, command, health check, environment, ordered
start), every variable it interpolates is documented in .env.example, the
services' environment is made of real settings that validate, and the gateway
and Hasura are wired to the services' real ports.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest

from services.cli import build_parser
from services.common.licence import check_startup
from services.common.settings import ConfigError, Settings, load_settings
from tests.deploy.support import (
    COMPOSE_FILE,
    ENV_EXAMPLE,
    NGINX_TEMPLATE,
    NGINX_TEMPLATE_VARIABLES,
    REPO_ROOT,
    compose,
    compose_variables,
    documented_env_names,
    dotenv,
    passthrough_variables,
    service_environment,
)

STACK = {
    "postgres",
    "hasura",
    "nginx",
    "nself-anomaly",
    "nself-oncall",
    "nself-oncall-worker",
    "nself-console",  # its own settings (CONSOLE_*): tests/console/test_deploy.py
}
# built from deploy/Dockerfile: the Python processes of this project
OURS = {"nself-anomaly", "nself-oncall", "nself-oncall-worker"}
# images whose own entrypoint and command are the right ones
IMAGE_DEFAULT_COMMAND = {
    "postgres": "postgres:",
    "hasura": "hasura/graphql-engine:",
    "nginx": "nginx:",
}
SERVICE_PORTS = {"nself-anomaly": 3842, "nself-oncall": 3840}
SECRETS = (
    "PLUGIN_SECRET",
    "HASURA_GRAPHQL_JWT_SECRET",
    "HASURA_GRAPHQL_ADMIN_SECRET",
    "POSTGRES_PASSWORD",
    "WEBHOOK_SIGNING_SECRET",
)


def services() -> dict[str, dict[str, Any]]:
    return compose()["services"]  # type: ignore[no-any-return]


def example_env() -> dict[str, str]:
    return dotenv(ENV_EXAMPLE)


def test_compose_runs_the_whole_stack() -> None:
    assert set(services()) == STACK


@pytest.mark.parametrize("name", sorted(STACK))
def test_every_service_is_complete(name: str) -> None:
    service = services()[name]
    assert service.get("image") or service.get("build"), f"{name}: no image or build"
    if "command" not in service:
        image = str(service.get("image", ""))
        assert image.startswith(IMAGE_DEFAULT_COMMAND.get(name, "\0")), (
            f"{name}: no command and not an image whose default command is right"
        )
    health = service.get("healthcheck") or {}
    assert health.get("test") and not health.get("disable"), f"{name}: no health check"
    assert health["test"][0] in {"CMD", "CMD-SHELL"}
    assert service.get("environment"), f"{name}: no environment"
    assert service.get("restart") == "unless-stopped"


def test_start_order_waits_for_health() -> None:
    every = services()
    for name, service in every.items():
        depends = service.get("depends_on") or {}
        assert isinstance(depends, dict), f"{name}: depends_on needs conditions"
        for target, rule in depends.items():
            assert target in every, f"{name} depends on unknown {target}"
            assert rule.get("condition") == "service_healthy", f"{name} -> {target}"
    order = {name: set(service.get("depends_on") or {}) for name, service in every.items()}
    assert order["nself-anomaly"] >= {"postgres"}
    assert order["nself-oncall"] >= {"postgres"}
    # the worker does not migrate: it waits for a service that has
    assert order["nself-oncall-worker"] >= {"postgres", "nself-oncall"}
    # Hasura's metadata refers to the services' tables, routes and remote schema
    assert order["hasura"] >= {"postgres", "nself-anomaly", "nself-oncall"}
    assert order["nginx"] >= {"nself-anomaly", "nself-oncall"}
    # no cycles
    done: set[str] = set()
    while len(done) < len(order):
        ready = {name for name, needs in order.items() if name not in done and needs <= done}
        assert ready, f"dependency cycle among {set(order) - done}"
        done |= ready


@pytest.mark.parametrize("name", sorted(OURS))
def test_our_processes_use_the_project_image_and_listen_on_all_interfaces(name: str) -> None:
    service = services()[name]
    assert service["build"]["dockerfile"] == "deploy/Dockerfile"
    assert (REPO_ROOT / service["build"]["context"] / "deploy" / "Dockerfile").is_file()
    env = service_environment(name, example_env())
    # the services default to 127.0.0.1, unreachable from other containers
    assert env["HOST"] == "0.0.0.0"
    assert env["MIGRATIONS_DIR"] == "/app/migrations/default"
    command = service["command"]
    assert command[0] == "nsentry"
    build_parser().parse_args(command[1:])  # a real subcommand
    if name in SERVICE_PORTS:
        port = SERVICE_PORTS[name]
        assert command[1:] == ["serve", name.removeprefix("nself-")]
        assert env["PORT"] == str(port)
        assert service["expose"] == [str(port)]
        assert f"http://127.0.0.1:{port}/ready" in service["healthcheck"]["test"]
    # scaled with --scale: a fixed published port would collide
    assert "ports" not in service


@pytest.mark.parametrize("name", sorted(OURS))
def test_our_environment_is_made_of_settings_that_validate(name: str) -> None:
    env = service_environment(name, example_env())
    known = {field.upper() for field in Settings.model_fields}
    unknown = set(env) - known
    assert not unknown, f"{name} sets variables no setting reads: {sorted(unknown)}"
    settings = load_settings(_env_file=None, **{key.lower(): value for key, value in env.items()})
    assert settings.host == "0.0.0.0"
    assert settings.jwt is not None
    assert settings.oncall_url == "http://nself-oncall:3840"
    # optional settings left out of .env stay unset (an empty string would not)
    assert settings.smtp_username is None and settings.smtp_password is None
    assert settings.nself_plugin_license_key is None
    # the licence is the operator's to set: with the example's empty key the start is
    # refused with a clear line, and the skip switch lets it through
    with pytest.raises(ConfigError, match="NSELF_PLUGIN_LICENSE_KEY is required"):
        check_startup(settings)
    check_startup(
        load_settings(
            _env_file=None,
            **{
                **{key.lower(): value for key, value in env.items()},
                "nself_license_skip_verify": "1",
            },
        )
    )


def test_every_interpolated_variable_is_documented_in_env_example() -> None:
    used = compose_variables(COMPOSE_FILE.read_text()) | passthrough_variables()
    documented = documented_env_names(ENV_EXAMPLE)
    assert used - documented == set(), f"add to .env.example: {sorted(used - documented)}"
    # and nothing in .env.example is dead
    assert documented - used == set(), f"unused in compose: {sorted(documented - used)}"
    # every service's environment interpolates with the example values
    for name in services():
        service_environment(name, example_env())


def test_secrets_only_come_from_the_env_file() -> None:
    text = COMPOSE_FILE.read_text()
    for name in SECRETS:
        for line in text.splitlines():
            key = line.strip().split(":", 1)[0]
            if key == name:
                value = line.split(":", 1)[1].strip()
                assert re.fullmatch(r"\$\{" + name + r":\?[^}]+\}", value), (
                    f"{name} must be required from .env, got {value!r}"
                )
    for name in SECRETS:
        assert "change-me" in example_env()[name], f".env.example must not ship a real {name}"
    gitignore = (REPO_ROOT / ".gitignore").read_text().split()
    assert ".env" in gitignore


def test_hasura_applies_the_repositorys_metadata_and_migrations() -> None:
    hasura = services()["hasura"]
    assert re.fullmatch(
        r"hasura/graphql-engine:\$\{HASURA_VERSION:-v2\.\d+\.\d+\}\.cli-migrations-v3",
        hasura["image"],
    )
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in hasura["volumes"]}
    assert mounts["/hasura-metadata"] == "./hasura/metadata"
    assert mounts["/hasura-migrations"] == "./migrations"
    for host in mounts.values():
        assert (REPO_ROOT / host).is_dir()
    assert (REPO_ROOT / "migrations" / "default").is_dir()  # the CLI's database folder
    env = service_environment("hasura", example_env())
    postgres = service_environment("postgres", example_env())
    url = urlsplit(env["HASURA_GRAPHQL_DATABASE_URL"])
    assert (url.hostname, url.port, url.path) == ("postgres", 5432, f"/{postgres['POSTGRES_DB']}")
    assert url.username == postgres["POSTGRES_USER"]
    assert url.password == postgres["POSTGRES_PASSWORD"]
    assert env["HASURA_GRAPHQL_JWT_SECRET"] == example_env()["HASURA_GRAPHQL_JWT_SECRET"]
    # the bearer Hasura sends is the services' secret
    anomaly = service_environment("nself-anomaly", example_env())
    assert env["NSELF_PLUGIN_BEARER"] == f"Bearer {anomaly['PLUGIN_SECRET']}"
    for variable, service in (
        ("NSELF_ANOMALY_URL", "nself-anomaly"),
        ("NSELF_ONCALL_URL", "nself-oncall"),
    ):
        target = urlsplit(env[variable])
        assert (target.hostname, target.port) == (service, SERVICE_PORTS[service])


def test_services_and_hasura_share_one_database() -> None:
    hasura = service_environment("hasura", example_env())
    for name in OURS:
        assert (
            service_environment(name, example_env())["DATABASE_URL"]
            == (hasura["HASURA_GRAPHQL_DATABASE_URL"])
        )


def test_gateway_renders_the_shipped_template_against_the_services() -> None:
    nginx = services()["nginx"]
    # the template, and the console's location file it includes (tests/console)
    mount = next(v for v in nginx["volumes"] if v.endswith(".template:ro"))
    host, container = mount.split(":")[:2]
    assert (REPO_ROOT / host).resolve() == NGINX_TEMPLATE.resolve()
    # the nginx image runs envsubst on /etc/nginx/templates/*.template at start
    assert container.startswith("/etc/nginx/templates/") and container.endswith(".template")
    env = service_environment("nginx", example_env())
    assert set(env) == set(NGINX_TEMPLATE_VARIABLES)
    for variable, service in (
        ("NSELF_ANOMALY_UPSTREAM", "nself-anomaly"),
        ("NSELF_ONCALL_UPSTREAM", "nself-oncall"),
    ):
        assert env[variable] == f"{service}:{SERVICE_PORTS[service]}"
    assert (
        env["PLUGIN_SECRET"] == service_environment("nself-anomaly", example_env())["PLUGIN_SECRET"]
    )
    published = nginx["ports"][0].rsplit(":", 1)[1]
    assert published == env["NSENTRY_GATEWAY_PORT"]
    assert f"http://127.0.0.1:{published}/health" in nginx["healthcheck"]["test"]


def test_postgres_runs_the_init_scripts_and_keeps_its_data() -> None:
    postgres = services()["postgres"]
    mounts = dict(volume.split(":")[:2][::-1] for volume in postgres["volumes"])
    assert mounts["/var/lib/postgresql/data"] == "pgdata"
    assert "pgdata" in compose()["volumes"]
    initdb = REPO_ROOT / mounts["/docker-entrypoint-initdb.d"]
    assert sorted(p.name for p in initdb.glob("*.sql")), "no init scripts"


def test_dockerfile_installs_the_project_for_every_process() -> None:
    text = (REPO_ROOT / "deploy" / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.1[1-9]", text, re.MULTILINE)
    assert "pip install ." in text
    assert re.search(r"HOST=0\.0\.0\.0", text)
    assert "MIGRATIONS_DIR=/app/migrations/default" in text
    assert "COPY migrations ./migrations" in text
    assert "COPY deploy/healthcheck.py" in text
    assert re.search(r"^USER (?!root)\S+", text, re.MULTILINE), "runs as root"
    ignore = (REPO_ROOT / "deploy" / "Dockerfile.dockerignore").read_text().split()
    for needed in ("!pyproject.toml", "!README.md", "!services/**", "!migrations/**"):
        assert needed in ignore


def test_deployment_guide_explains_every_variable() -> None:
    guide = (REPO_ROOT / "docs" / "deployment.md").read_text()
    missing = sorted(name for name in documented_env_names(ENV_EXAMPLE) if name not in guide)
    assert not missing, f"docs/deployment.md does not mention {missing}"
