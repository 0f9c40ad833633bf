"""Helpers for the deployment tests: the shipped files, template rendering, nginx.

Hasura cannot run here, so its metadata is checked by contract against the
FastAPI apps, the Strawberry SDL and the migrated database. nginx can: the
gateway test installs Debian's package when it is missing and runs the shipped
template in a real nginx.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.debian import install, which

REPO_ROOT = Path(__file__).resolve().parents[2]
HASURA_DIR = REPO_ROOT / "hasura"
METADATA_DIR = HASURA_DIR / "metadata"
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
ENV_EXAMPLE = REPO_ROOT / ".env.example"
NGINX_TEMPLATE = REPO_ROOT / "deploy" / "nginx" / "templates" / "nsentry.conf.template"
SCHEMA_DIR = REPO_ROOT / "schema"
MIGRATIONS_DIR = REPO_ROOT / "migrations" / "default"

# the variables the nginx template expects (the image's envsubst fills them)
NGINX_TEMPLATE_VARIABLES = (
    "NSENTRY_GATEWAY_PORT",
    "NSELF_ANOMALY_UPSTREAM",
    "NSELF_ONCALL_UPSTREAM",
    "PLUGIN_SECRET",
)
_ENVSUBST_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Z_][A-Z0-9_]*)")
# characters that would break out of the quoted nginx string the secret sits in
_SECRET_UNSAFE = re.compile(r"[\s\"'\\$;{}]")


def load_yaml(path: Path) -> Any:
    with path.open() as handle:
        return yaml.safe_load(handle)


# --- nginx template -------------------------------------------------------------------


def template_references(text: str) -> set[str]:
    """Upper-case environment references (`${NAME}` or `$NAME`) envsubst would replace."""
    return {m.group(1) or m.group(2) for m in _ENVSUBST_REFERENCE.finditer(text)}


def render_template(text: str, values: dict[str, str]) -> str:
    """envsubst with an explicit variable list, as the nginx image runs it.

    Only the listed names are replaced (nginx's own lower-case `$variables` stay);
    every upper-case reference must be one of them.
    """
    missing = {name for name in template_references(text) if name not in values}
    if missing:
        raise ValueError(f"template variables without a value: {sorted(missing)}")
    secret = values.get("PLUGIN_SECRET", "")
    if _SECRET_UNSAFE.search(secret):
        raise ValueError("PLUGIN_SECRET must not contain whitespace, quotes, \\ $ ; { }")

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return values.get(name, match.group(0))

    return _ENVSUBST_REFERENCE.sub(replace, text)


def nginx_main_config(prefix: Path, include: Path) -> str:
    """The main-context wrapper the nginx image's own nginx.conf provides in production.

    Only process, log and temp-path settings for a private prefix; the routing is
    entirely the included rendered template.
    """
    user = "user root root;\n" if os.geteuid() == 0 else ""
    temp = {name: prefix / name for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")}
    for path in temp.values():
        path.mkdir(parents=True, exist_ok=True)
    return (
        f"{user}"
        "worker_processes 1;\n"
        f"pid {prefix / 'nginx.pid'};\n"
        f"error_log {prefix / 'error.log'} info;\n"
        "events { worker_connections 256; }\n"
        "http {\n"
        f"    access_log {prefix / 'access.log'};\n"
        f"    client_body_temp_path {temp['client_body']};\n"
        f"    proxy_temp_path {temp['proxy']};\n"
        f"    fastcgi_temp_path {temp['fastcgi']};\n"
        f"    uwsgi_temp_path {temp['uwsgi']};\n"
        f"    scgi_temp_path {temp['scgi']};\n"
        f"    include {include};\n"
        "}\n"
    )


# --- nginx binary -----------------------------------------------------------------


def find_nginx() -> str | None:
    return which(
        ("nginx",), ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx")
    )


def install_nginx() -> tuple[str | None, str]:
    """nginx from Debian's archive (apt-get) when missing; (path or None, why not).
    nginx-light is gone from newer releases; the plain package has auth_request too."""
    return install("nginx", ("nginx-light", "nginx"), find_nginx)


def nginx_has_auth_request(binary: str) -> bool:
    result = subprocess.run([binary, "-V"], capture_output=True, text=True, check=False)
    return "http_auth_request_module" in (result.stderr + result.stdout)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bound_socket() -> socket.socket:
    """A listening loopback socket on a free port (handed to uvicorn: no port race)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.setblocking(False)
    return sock


# --- Hasura metadata ------------------------------------------------------------------

_INCLUDE = "!include "


def load_metadata_file(path: Path) -> Any:
    """A metadata YAML file with the CLI's `"!include other.yaml"` strings resolved."""
    return _resolve_includes(load_yaml(path), path.parent)


def _resolve_includes(node: Any, base: Path) -> Any:
    if isinstance(node, str) and node.startswith(_INCLUDE):
        target = (base / node[len(_INCLUDE) :].strip()).resolve()
        return _resolve_includes(load_yaml(target), target.parent)
    if isinstance(node, list):
        return [_resolve_includes(item, base) for item in node]
    if isinstance(node, dict):
        return {key: _resolve_includes(value, base) for key, value in node.items()}
    return node


def databases() -> list[dict[str, Any]]:
    return load_metadata_file(METADATA_DIR / "databases" / "databases.yaml")  # type: ignore[no-any-return]


def tracked_tables() -> dict[str, dict[str, Any]]:
    """`schema.name` -> the table's metadata, over every database."""
    tables: dict[str, dict[str, Any]] = {}
    for database in databases():
        for table in database.get("tables") or []:
            ref = table["table"]
            tables[f"{ref['schema']}.{ref['name']}"] = table
    return tables


_TEMPLATE_VAR = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def template_env_names(value: str) -> set[str]:
    """The environment variables a Hasura `{{VAR}}` URL template refers to."""
    return set(_TEMPLATE_VAR.findall(value))


def resolve_template(value: str, env: dict[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise KeyError(f"{name} is not set in the hasura service environment")
        return env[name]

    return _TEMPLATE_VAR.sub(replace, value)


# --- docker compose -----------------------------------------------------------------

_COMPOSE_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def compose() -> dict[str, Any]:
    return load_yaml(COMPOSE_FILE)  # type: ignore[no-any-return]


def compose_variables(text: str) -> set[str]:
    """Names of the `${VAR...}` interpolations in a compose value."""
    return {m.group(1) for m in _COMPOSE_VAR.finditer(text)}


def interpolate(text: str, env: dict[str, str]) -> str:
    """docker compose interpolation of `${VAR}`, `${VAR:-default}`, `${VAR:?error}`."""

    def replace(match: re.Match[str]) -> str:
        name, operator, argument = match.group(1), match.group(2), match.group(3) or ""
        value = env.get(name)
        if operator in (":-", "-"):
            if value is None or (operator == ":-" and value == ""):
                return argument
            return value
        if operator in (":?", "?"):
            if value is None or (operator == ":?" and value == ""):
                raise KeyError(f"{name}: {argument}")
            return value
        return value or ""

    return _COMPOSE_VAR.sub(replace, text).replace("$$", "$")


def dotenv(path: Path) -> dict[str, str]:
    """The KEY=value lines of an env file (compose's rules for quotes)."""
    values: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def service_environment(name: str, env: dict[str, str]) -> dict[str, str]:
    """A compose service's environment, interpolated with `env` (the .env values).

    A key without a value is passed through from `env` when set there and is
    otherwise absent from the container, as docker compose does.
    """
    service = compose()["services"][name]
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = {item.split("=", 1)[0]: (item.split("=", 1) + [None])[1] for item in raw}
    resolved: dict[str, str] = {}
    for key, value in raw.items():
        if value is None:
            if key in env:
                resolved[key] = env[key]
        else:
            resolved[key] = interpolate(str(value), env)
    return resolved


def passthrough_variables() -> set[str]:
    """Environment keys given without a value in any compose service."""
    names: set[str] = set()
    for service in compose()["services"].values():
        raw = service.get("environment") or {}
        if isinstance(raw, dict):
            names |= {key for key, value in raw.items() if value is None}
        else:
            names |= {item for item in raw if "=" not in item}
    return names


def documented_env_names(path: Path) -> set[str]:
    """Keys an env file sets or shows commented out (`# KEY=...`)."""
    found = set(dotenv(path))
    for raw in path.read_text().splitlines():
        match = re.match(r"#\s*([A-Z][A-Z0-9_]*)=", raw.strip())
        if match:
            found.add(match.group(1))
    return found
