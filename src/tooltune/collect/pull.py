"""HTTP pulls from one publisher (httpx, async): the .well-known document, the catalog, and every
page of the training and test datasets, with timeouts, retries and conditional requests.

Nothing here validates examples; :mod:`tooltune.collect.orchestrator` does, against the catalog.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import httpx

from tooltune.collect.config import ServiceEntry
from tooltune.data.publication import WELL_KNOWN_PATH, TrainingDataDocument

_RETRY_STATUS = {429, 500, 502, 503, 504}
_MAX_RETRY_AFTER_S = 30.0  # a publisher asking us to wait longer fails this run instead of stalling it


class PullError(Exception):
    """A publisher could not be read; the message says what was tried and what came back."""


@dataclass
class DatasetPull:
    """The new items of one dataset since the last pull (``not_modified``: the publisher said 304)."""

    items: list[Any] = field(default_factory=list)
    etag: str | None = None
    not_modified: bool = False
    pages: int = 0
    publisher_skipped: list[Any] = field(default_factory=list)


async def get_json(client: httpx.AsyncClient, entry: ServiceEntry, path: str, *, token: str | None = None,
                   params: dict[str, Any] | None = None, etag: str | None = None) -> tuple[int, Any, httpx.Headers]:
    """GET ``path`` with retries; returns (status, JSON body or None for 304, headers).

    Retried: timeouts, connection errors, 429 and 5xx. Not retried: other 4xx (a retry cannot fix
    a bad token or a refused role)."""
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if etag:
        headers["If-None-Match"] = etag
    url = entry.url + path
    last = ""
    for attempt in range(entry.retries + 1):
        delay = entry.backoff_s * 2 ** attempt
        try:
            response = await client.get(url, params=params, headers=headers, timeout=entry.timeout)
        except httpx.TimeoutException:
            last = f"no answer within {entry.timeout:g} s"
        except httpx.TransportError as e:
            last = f"cannot connect ({type(e).__name__}: {e or 'connection failed'})"
        else:
            if response.status_code == 304:
                return 304, None, response.headers
            if response.status_code < 400:
                try:
                    return response.status_code, response.json(), response.headers
                except ValueError:
                    raise PullError(f"GET {url}: answered {response.status_code} with a body that is not JSON") from None
            last = f"HTTP {response.status_code}: {_detail(response)}"
            if response.status_code not in _RETRY_STATUS:
                raise PullError(f"GET {url}: {last}")
            retry_after = _retry_after(response)
            if retry_after is not None:
                if retry_after > _MAX_RETRY_AFTER_S:
                    raise PullError(f"GET {url}: {last} (Retry-After {retry_after:g} s; try again later)")
                delay = retry_after
        if attempt < entry.retries:
            await asyncio.sleep(delay)
    tries = entry.retries + 1
    raise PullError(f"GET {url}: {last} (after {tries} attempt{'s' if tries > 1 else ''})")


async def well_known(client: httpx.AsyncClient, entry: ServiceEntry) -> TrainingDataDocument:
    _, body, _ = await get_json(client, entry, WELL_KNOWN_PATH)
    try:
        return TrainingDataDocument.model_validate(body)
    except ValueError as e:
        raise PullError(f"{entry.url}{WELL_KNOWN_PATH}: not a training-data document: {str(e).splitlines()[0]}") from None


async def pull_dataset(client: httpx.AsyncClient, entry: ServiceEntry, path: str, *, token: str | None,
                       since: str | None, etag: str | None) -> DatasetPull:
    """Every page of ``path`` newer than ``since``; page 1 is sent with ``etag`` (If-None-Match)."""
    out = DatasetPull()
    page = 1
    while True:
        params = {"format": "tooltune", "page": page, "page_size": entry.page_size, **({"since": since} if since else {})}
        status, body, headers = await get_json(client, entry, path, token=token, params=params,
                                               etag=etag if page == 1 else None)
        out.pages += 1
        if page == 1:
            out.etag = headers.get("etag")
            if status == 304:
                out.not_modified = True
                return out
        if not isinstance(body, dict) or not isinstance(body.get("items"), list):
            raise PullError(f"GET {entry.url}{path} page {page}: expected an object with an items list")
        out.items += body["items"]
        out.publisher_skipped += body.get("skipped") or []
        next_page = body.get("next_page")
        if not next_page or page >= 10_000:  # a publisher that keeps handing out pages must not loop forever
            return out
        page = int(next_page)


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    return str(body.get("detail", body))[:300] if isinstance(body, dict) else str(body)[:300]


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["retry-after"])
    except (KeyError, ValueError):
        return None
