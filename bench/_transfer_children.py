"""The transfer benchmark's child processes (started as `bench/transfer.py raw-server` and
`bench/transfer.py client`): a raw HTTP sink and source on a plain socket, and blocking
clients that upload or download a file of a fixed pseudo-random pattern; the pattern and its
digest.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import socket
import time
from typing import Any

MiB = 1024 * 1024
BLOCK = MiB


def pattern() -> bytes:
    """1 MiB of fixed pseudo-random bytes; a file is this block repeated."""
    out = bytearray()
    seed = b"supportbroker transfer benchmark"
    while len(out) < BLOCK:
        seed = hashlib.sha256(seed).digest()
        out += seed
    return bytes(out[:BLOCK])


def expected_sha256(size: int) -> str:
    block = pattern()
    digest = hashlib.sha256()
    for _ in range(size // BLOCK):
        digest.update(block)
    digest.update(block[:size % BLOCK])
    return digest.hexdigest()

# -- child processes: raw sink and blocking clients ---------------------------------------


def raw_server(port: int) -> None:
    """Serve one connection at a time: ``PUT n`` reads n bytes, ``GET n`` sends n bytes."""
    block = pattern()
    with socket.create_server(("127.0.0.1", port)) as server:
        while True:
            conn, _ = server.accept()
            with conn:
                line = b""
                while not line.endswith(b"\n"):
                    part = conn.recv(1)
                    if not part:
                        break
                    line += part
                if not line:
                    continue
                verb, count = line.decode().split()
                size = int(count)
                if verb == "PUT":
                    view = memoryview(bytearray(BLOCK))
                    left = size
                    while left:
                        got = conn.recv_into(view, min(BLOCK, left))
                        if not got:
                            break
                        left -= got
                    conn.sendall(b"OK\n")
                else:
                    left = size
                    while left:
                        chunk = block if left >= BLOCK else block[:left]
                        conn.sendall(chunk)
                        left -= len(chunk)


def _send_body(conn: socket.socket, size: int) -> None:
    block = pattern()
    left = size
    while left:
        chunk = block if left >= BLOCK else block[:left]
        conn.sendall(chunk)
        left -= len(chunk)


def _read_head(conn: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        part = conn.recv(65536)
        if not part:
            raise RuntimeError(f"connection closed in the response head: {data!r}")
        data += part
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, rest


def client(args: argparse.Namespace) -> None:
    """One timed transfer; prints {"seconds", "bytes", ...} as JSON."""
    if args.nice:
        os.nice(args.nice)
    size = args.size
    with socket.create_connection(("127.0.0.1", args.port)) as conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if args.mode == "raw-put":
            start = time.perf_counter()
            conn.sendall(f"PUT {size}\n".encode())
            _send_body(conn, size)
            assert conn.recv(3) == b"OK\n"
            result: dict[str, Any] = {}
        elif args.mode == "raw-get":
            start = time.perf_counter()
            conn.sendall(f"GET {size}\n".encode())
            view = memoryview(bytearray(BLOCK))
            left = size
            while left:
                got = conn.recv_into(view, min(BLOCK, left))
                if not got:
                    raise RuntimeError("raw sender stopped early")
                left -= got
            result = {}
        elif args.mode == "patch":
            head = (f"PATCH {args.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    f"Authorization: Bearer {args.token}\r\nTus-Resumable: 1.0.0\r\n"
                    f"Upload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\n"
                    f"Content-Length: {size}\r\n\r\n").encode()
            start = time.perf_counter()
            conn.sendall(head)
            _send_body(conn, size)
            status, headers, _ = _read_head(conn)
            result = {"status": status, "offset": headers.get("upload-offset")}
        else:  # get
            start = time.perf_counter()
            conn.sendall((f"GET {args.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          f"Authorization: Bearer {args.token}\r\n\r\n").encode())
            status, headers, rest = _read_head(conn)
            left = int(headers["content-length"]) - len(rest)
            view = memoryview(bytearray(BLOCK))
            while left:
                got = conn.recv_into(view, min(BLOCK, left))
                if not got:
                    raise RuntimeError("download stopped early")
                left -= got
            result = {"status": status, "repr_digest": headers.get("repr-digest")}
        seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "bytes": size, **result}))
