"""`nsentry export-schema`: write the Strawberry SDL (the Hasura remote schema) to a file."""

from __future__ import annotations

import argparse
from pathlib import Path

from services.oncall.graphql.schema import sdl


def run_export(args: argparse.Namespace) -> int:
    out = Path(getattr(args, "out", None) or "schema/oncall.graphql")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(sdl())
    print(f"wrote {out}")
    return 0
