"""numba's on-disk cache of auto is stamped with the whole package, not one file."""

from __future__ import annotations

import shutil
from pathlib import Path

from numba.core.registry import CPUDispatcher

from services.anomaly.detectors.auto import _cache, calibration, kernel, window


def dispatchers() -> list[CPUDispatcher]:
    found = []
    for module in (kernel, window, calibration):
        for value in vars(module).values():
            if isinstance(value, CPUDispatcher) and value.__module__ == module.__name__:
                found.append(value)
    return found


def test_every_compiled_function_is_stamped_with_the_package_hash() -> None:
    compiled = dispatchers()
    assert {f.__name__ for f in compiled} >= {"kernel", "push", "quantile", "typical"}
    for function in compiled:
        locator = function._cache._impl.locator
        assert isinstance(locator, _cache.PackageInTreeLocator | _cache.PackageUserWideLocator)
        assert locator.get_source_stamp() == _cache.STAMP


def test_a_change_to_any_module_changes_the_stamp(tmp_path: Path) -> None:
    copy = tmp_path / "auto"
    shutil.copytree(_cache.PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert _cache.package_stamp(copy) == _cache.STAMP
    params = copy / "params.py"
    params.write_text(
        params.read_text().replace("CALIBRATION_PRIOR = ", "CALIBRATION_PRIOR = 1 + ")
    )
    assert _cache.package_stamp(copy) != _cache.STAMP
