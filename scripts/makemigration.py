"""Autogenerate a core migration against a scratch SQLite database at head."""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from alembic import command
from sqlalchemy import create_engine

from gakwaya.db.migrate import CORE, alembic_config, migrations_dir, upgrade


def main() -> None:
    message = sys.argv[1] if len(sys.argv) > 1 else "change"
    with tempfile.TemporaryDirectory() as tmp:
        versions = migrations_dir() / "versions"
        # Regenerating 0001 (it was deleted): the hand-written revisions after it
        # (0002_audit_append_only: triggers) build on it, so set them aside meanwhile.
        later: list[Path] = []
        if not list(versions.glob("0001_*.py")):
            later = sorted(versions.glob("[0-9][0-9][0-9][0-9]_*.py"))
            for path in later:
                shutil.move(path, Path(tmp) / path.name)
        try:
            url = f"sqlite:///{Path(tmp) / 'scratch.db'}"
            engine = create_engine(url)
            upgrade(engine)
            cfg = alembic_config(url)
            number = len(list(versions.glob("[0-9][0-9][0-9][0-9]_*.py"))) + 1
            command.revision(
                cfg,
                message=message,
                autogenerate=True,
                rev_id=f"{number:04d}",
                # The first revision names core's branch (plugins have their own).
                branch_label=CORE if number == 1 else None,
            )
            engine.dispose()
        finally:
            for path in later:
                shutil.move(Path(tmp) / path.name, path)


if __name__ == "__main__":
    main()
