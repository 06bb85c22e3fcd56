"""A service team's own FastAPI app with tooltune's publisher router mounted, answering slowly
(a stand-in for a loaded service): ``python slow_publisher.py SERVICE DIR PORT DB_URL DELAY_S``."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import uvicorn
from fastapi import FastAPI, Request

from tooltune.publish import PublishConfig, Publisher, publisher_router


def main() -> None:
    service, folder, port, db, delay = sys.argv[1:6]
    app = FastAPI(title=f"{service} (team app)")

    @app.middleware("http")
    async def slow(request: Request, call_next):
        await asyncio.sleep(float(delay))
        return await call_next(request)

    @app.get("/health")
    def health() -> dict:
        return {"ok": True}

    config = PublishConfig(service=service, data_dir=Path(folder), key=os.environ["TOOLTUNE_PUBLISH_KEY"], db_url=db)
    app.include_router(publisher_router(Publisher(config)))
    uvicorn.run(app, host="127.0.0.1", port=int(port), log_level="warning")


if __name__ == "__main__":
    main()
