"""The baseline: a bare Litestar JSON endpoint, served the same way as the panel."""

from __future__ import annotations

import sys

import uvicorn
from litestar import Litestar, get


@get("/items", sync_to_thread=False)
def items() -> dict[str, list[dict[str, object]]]:
    return {"items": [{"id": i, "name": f"item {i}"} for i in range(50)]}


app = Litestar([items])

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
