"""The `nsentry` command line."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable

# `nsentry bench <name>` is served by a module exposing add_arguments(parser) and run(args).
BENCHMARKS: dict[str, tuple[str, str]] = {
    "nab": ("bench.nab.runner", "NAB accuracy of the default detector"),
    "ingest": ("bench.ingest", "HTTP ingest throughput against raw COPY"),
    "remote-write": ("bench.remote_write", "Prometheus remote-write burst against raw COPY"),
    "oncall": ("bench.resolver", "on-call resolution against recurring_ical_events"),
    "alerts": ("bench.alerts", "1,000 alerts at once to a webhook sink"),
    "synth": ("bench.synth.runner", "write a seeded labelled corpus of operations metrics"),
    "console": ("bench.console.runner", "console page timings (100 detectors, a week of data)"),
}


def _lazy(module: str, function: str) -> Callable[[argparse.Namespace], int]:
    def call(args: argparse.Namespace) -> int:
        return int(getattr(importlib.import_module(module), function)(args) or 0)

    return call


def _add_benchmark(sub: argparse.ArgumentParser, name: str, module: str) -> None:
    try:
        importlib.import_module(module).add_arguments(sub)
    except ModuleNotFoundError as exc:
        # absent from this build: the module itself or a package above it
        if exc.name is None or not f"{module}.".startswith(f"{exc.name}."):
            raise
        sub.set_defaults(handler=lambda _a, n=name: _missing(n))
        return
    sub.set_defaults(handler=_lazy(module, "run"))


def build_parser(*, with_benchmarks: bool = True) -> argparse.ArgumentParser:
    """The parser; the benchmark modules (and what they import) are loaded only
    `with_benchmarks`, so that no other command depends on them."""
    parser = argparse.ArgumentParser(prog="nsentry", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = commands.add_parser(
        "up", help="run everything locally (embedded Postgres if no DATABASE_URL)"
    )
    up.add_argument("--data-dir", default=".nsentry", help="embedded Postgres and local state")
    up.add_argument("--no-worker", action="store_true", help="do not run the on-call worker")
    up.add_argument("--no-console", action="store_true", help="do not serve the web console")
    up.set_defaults(handler=_lazy("services.launcher", "run_up"))

    migrate = commands.add_parser("migrate", help="apply pending migrations (or roll back)")
    migrate.add_argument("--down", type=int, metavar="N", help="roll back the last N migrations")
    migrate.add_argument(
        "--data-dir", default=".nsentry", help="embedded Postgres (no DATABASE_URL)"
    )
    migrate.set_defaults(handler=_lazy("services.launcher", "run_migrate"))

    serve = commands.add_parser("serve", help="run one service")
    serve.add_argument("service", choices=["anomaly", "oncall", "console"])
    serve.set_defaults(handler=_lazy("services.launcher", "run_serve"))

    worker = commands.add_parser("worker", help="run the on-call escalation and delivery worker")
    worker.set_defaults(handler=_lazy("services.launcher", "run_worker"))

    inbound = commands.add_parser(
        "inbound-email", help="run email-to-alert alone (INBOUND_EMAIL_PORT, _DOMAIN)"
    )
    inbound.set_defaults(handler=_lazy("services.launcher", "run_inbound_email"))

    export = commands.add_parser("export-schema", help="write the Strawberry SDL to schema/")
    export.add_argument("--out", default="schema/oncall.graphql")
    export.set_defaults(handler=_lazy("services.oncall.graphql.export", "run_export"))

    bench = commands.add_parser("bench", help="benchmarks")
    benches = bench.add_subparsers(dest="bench", required=True, metavar="BENCH")
    for name, (module, help_text) in BENCHMARKS.items():
        sub = benches.add_parser(name, help=help_text)
        if with_benchmarks:
            _add_benchmark(sub, name, module)
    return parser


def _missing(name: str) -> int:
    print(f"nsentry: benchmark {name!r} is not available in this build", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(with_benchmarks=bool(argv) and argv[0] == "bench").parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
