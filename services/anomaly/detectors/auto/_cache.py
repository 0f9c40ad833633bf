"""numba's on-disk cache for ``auto``, invalidated by a change to any module of the package.

numba keys a cached function on its own source file only: a constant it reads
from another module (the state layout, a parameter bound) could change while
the cached machine code stays. Every compiled function of this package is
therefore stamped with a hash of all the package's sources instead; the
locators below are tried before numba's own (in the package's
``__pycache__``, else the user-wide cache folder). Import this module before
decorating a function with ``njit(cache=True)``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from numba.core import caching

PACKAGE = Path(__file__).resolve().parent


def package_stamp(folder: Path = PACKAGE) -> str:
    """Hash of every module's name and bytes in ``folder``."""
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


STAMP = package_stamp()


def _in_package(py_file: str) -> bool:
    return Path(py_file).resolve().parent == PACKAGE


class _PackageStamped:
    """A numba locator for this package's functions only, stamped with the package hash."""

    def get_source_stamp(self) -> Any:
        return STAMP

    @classmethod
    def from_function(cls, py_func: Any, py_file: str) -> Any:
        if not _in_package(py_file):
            return None
        return super().from_function(py_func, py_file)  # type: ignore[misc]


class PackageInTreeLocator(_PackageStamped, caching.InTreeCacheLocator):
    """The package's ``__pycache__``."""


class PackageUserWideLocator(_PackageStamped, caching.UserWideCacheLocator):
    """The user-wide cache folder (read-only installs)."""


_LOCATORS = caching.CacheImpl._locator_classes  # noqa: SLF001 (numba's locator list)
for _locator in (PackageUserWideLocator, PackageInTreeLocator):
    if _locator not in _LOCATORS:
        _LOCATORS.insert(0, _locator)
