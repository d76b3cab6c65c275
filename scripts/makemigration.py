"""Autogenerate a core migration against a scratch SQLite database at head."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from alembic import command
from sqlalchemy import create_engine

from gakwaya.db.migrate import alembic_config, upgrade


def main() -> None:
    message = sys.argv[1] if len(sys.argv) > 1 else "change"
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'scratch.db'}"
        engine = create_engine(url)
        upgrade(engine)
        cfg = alembic_config(url)
        versions = Path(cfg.get_main_option("script_location") or "") / "versions"
        number = len(list(versions.glob("[0-9][0-9][0-9][0-9]_*.py"))) + 1
        command.revision(cfg, message=message, autogenerate=True, rev_id=f"{number:04d}")
        engine.dispose()


if __name__ == "__main__":
    main()
