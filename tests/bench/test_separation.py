"""The product never imports the benchmarks: no module under `services/` imports `bench`.

`services/cli.py` names the benchmark modules as strings and imports them
lazily; that is the only way in, so a build without `bench/` still runs.
"""

from __future__ import annotations

import ast
from pathlib import Path

SERVICES = Path(__file__).resolve().parents[2] / "services"


def bench_imports(path: Path) -> list[str]:
    """`import bench...` and `from bench... import` statements in one module."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [f"{path}:{node.lineno}: {n}" for n in names if n.split(".")[0] == "bench"]
    return found


def test_no_service_module_imports_bench() -> None:
    modules = sorted(SERVICES.rglob("*.py"))
    assert len(modules) > 20  # the scan looked where the product is
    assert [line for path in modules for line in bench_imports(path)] == []


def test_the_scan_sees_both_import_forms(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import bench.kit\nfrom bench.nab import scorer\nimport benchmark\n")
    assert [line.split(": ")[1] for line in bench_imports(sample)] == ["bench.kit", "bench.nab"]
