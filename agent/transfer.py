"""Files from and to the agent, over the broker's HTTP file API (docs/transfer.md), never
over the WebRTC control channel: file bytes there would queue in front of mouse and
keyboard events on the same SCTP association and delay them by up to seconds.

Uploads speak tus 1.0: a `POST` declares the length, the name and the SHA-256 of the whole
file (the broker checks it when the last byte arrives), then `PATCH`es of `chunk_size`
bytes each carry their own `Upload-Checksum: sha256`. A request that fails is resumed from
the offset the broker reports (`HEAD`), a bounded number of times.

Downloads are verified: the SHA-256 of what arrived must equal the one in the
`file.offered` event and the one in the response's `Repr-Digest`; otherwise the file is
deleted and the download fails. An interrupted download continues with a `Range` request.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import os
import re
from pathlib import Path
from typing import Any

import aiohttp

TUS = {"Tus-Resumable": "1.0.0"}
CHUNK = 4 * 1024 * 1024
ATTEMPTS = 5


class TransferError(RuntimeError):
    """A file could not be sent or received intact."""


def _b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def file_sha256(path: Path) -> bytes:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        for block in iter(lambda: source.read(1024 * 1024), b""):
            digest.update(block)
    return digest.digest()


async def upload(http: aiohttp.ClientSession, base_url: str, session_id: str, token: str,
                 path: Path, *, chunk_size: int = CHUNK) -> str:
    """Send one file; returns its upload URL once the broker has all of it."""
    size = (await asyncio.to_thread(path.stat)).st_size
    whole = await asyncio.to_thread(file_sha256, path)
    auth = {"Authorization": f"Bearer {token}", **TUS}
    metadata = f"filename {_b64(path.name)},checksum {_b64('sha256 ' + _b64(whole))}"
    async with http.post(f"{base_url}/api/v1/sessions/{session_id}/files/", headers={
            **auth, "Upload-Length": str(size), "Upload-Metadata": metadata}) as created:
        if created.status != 201:
            raise TransferError(f"the broker refused {path.name}: {await _reason(created)}")
        url = base_url + created.headers["Location"] if created.headers["Location"].startswith(
            "/") else created.headers["Location"]
    offset, failures = 0, 0
    with path.open("rb") as source:
        while offset < size:
            source.seek(offset)
            body = source.read(chunk_size)
            headers = {**auth, "Upload-Offset": str(offset),
                       "Content-Type": "application/offset+octet-stream",
                       "Upload-Checksum": "sha256 " + _b64(hashlib.sha256(body).digest())}
            try:
                async with http.patch(url, data=io.BytesIO(body), headers=headers) as answer:
                    if answer.status == 204:
                        offset = int(answer.headers["Upload-Offset"])
                        failures = 0
                        continue
                    if answer.status not in (409, 460) and answer.status < 500:
                        raise TransferError(f"{path.name}: {await _reason(answer)}")
            except (aiohttp.ClientError, TimeoutError):
                pass
            failures += 1
            if failures >= ATTEMPTS:
                raise TransferError(f"{path.name}: gave up after {ATTEMPTS} failed attempts")
            await asyncio.sleep(0.5 * 2 ** failures)
            offset = await _offset(http, url, auth)
    return url


async def _offset(http: aiohttp.ClientSession, url: str, auth: dict[str, str]) -> int:
    async with http.head(url, headers=auth) as answer:
        if answer.status != 200:
            raise TransferError(f"the upload is gone ({answer.status})")
        return int(answer.headers["Upload-Offset"])


async def download(http: aiohttp.ClientSession, url: str, token: str, expected_sha256: str,
                   directory: Path, name: str) -> Path:
    """Fetch one offered file into `directory`; returns where it was saved."""
    await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
    partial = directory / f".{safe_name(name)}.part"
    digest = hashlib.sha256()
    received, announced = 0, ""
    partial.unlink(missing_ok=True)
    try:
        for attempt in range(1, ATTEMPTS + 1):
            headers = {"Authorization": f"Bearer {token}"}
            if received:
                headers["Range"] = f"bytes={received}-"
            try:
                async with http.get(url, headers=headers) as answer:
                    if answer.status not in (200, 206):
                        raise TransferError(f"{name}: {await _reason(answer)}")
                    if received and answer.status != 206:
                        raise TransferError(f"{name}: the broker cannot resume downloads")
                    announced = answer.headers.get("Repr-Digest", "") or announced
                    with partial.open("ab") as out:
                        async for block in answer.content.iter_chunked(256 * 1024):
                            out.write(block)
                            digest.update(block)
                            received += len(block)
                break
            except (aiohttp.ClientError, TimeoutError):
                if attempt == ATTEMPTS:
                    raise TransferError(f"{name}: the download kept failing") from None
                await asyncio.sleep(0.5 * 2 ** attempt)
        got = digest.hexdigest()
        match = re.search(r"sha-256=:([A-Za-z0-9+/=]+):", announced)
        if got != expected_sha256.lower() or (
                match and base64.b64decode(match.group(1)).hex() != got):
            raise TransferError(f"{name} was damaged in transfer (SHA-256 {got[:16]}… does not "
                                f"match {expected_sha256[:16]}…); it was deleted")
        target = _free_path(directory / safe_name(name))
        os.replace(partial, target)
        return target
    finally:
        partial.unlink(missing_ok=True)


def safe_name(name: str) -> str:
    """A file name that stays inside the download directory and is valid everywhere."""
    cleaned = re.sub(r'[\x00-\x1f<>:"/\\|?*]', "_", name).strip(" .")
    return cleaned[:200] or "file"


def _free_path(path: Path) -> Path:
    if not path.exists():
        return path
    for n in range(1, 1000):
        candidate = path.with_name(f"{path.stem} ({n}){path.suffix}")
        if not candidate.exists():
            return candidate
    raise TransferError(f"too many files named {path.name}")


async def _reason(answer: aiohttp.ClientResponse) -> str:
    try:
        body: Any = await answer.json(content_type=None)
        return f"{body.get('message') or body.get('error')} ({answer.status})"
    except (ValueError, aiohttp.ClientError, AttributeError):
        return f"HTTP {answer.status}"
