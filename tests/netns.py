"""A private network namespace with only loopback, for tests and benchmarks with media.

WebRTC peers gather candidates on every interface they see and send connectivity checks to
whatever the other side offers; in the machine's own namespace that would include its LAN
address. Inside `loopback_only()` the calling thread (and every process it starts, such as
Chromium or coturn) sees only `lo`, with 127.0.0.1 and a second loopback address,
127.0.0.2: aiortc leaves 127.0.0.1 out of its host candidates, so without a second address
it would have none. Every packet stays on 127.0.0.0/8 of a namespace this process made.

Sockets opened inside live in the namespace; leave it only after closing them.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import subprocess
from collections.abc import Iterator

CLONE_NEWNET = 0x40000000
SECOND_LOOPBACK = "127.0.0.2"


class NetnsUnavailable(RuntimeError):
    """This process may not make network namespaces (not root, or no `ip`)."""


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


@contextlib.contextmanager
def loopback_only() -> Iterator[None]:
    """Run the body in a new network namespace with only loopback up."""
    ip = shutil.which("ip") or "/usr/sbin/ip"
    if not os.path.exists(ip):
        raise NetnsUnavailable("the `ip` command (iproute2) is missing")
    libc = _libc()
    original = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        if libc.unshare(CLONE_NEWNET) != 0:
            raise NetnsUnavailable(f"unshare(CLONE_NEWNET): {os.strerror(ctypes.get_errno())}")
        try:
            for argv in ([ip, "link", "set", "lo", "up"],
                         [ip, "addr", "add", f"{SECOND_LOOPBACK}/8", "dev", "lo"]):
                subprocess.run(argv, check=True, capture_output=True)  # noqa: S603
            yield
        finally:
            if libc.setns(original, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "could not leave the test's network namespace")
    finally:
        os.close(original)
