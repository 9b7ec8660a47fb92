"""The limits of tests/test_hardening_limits.py with two broker processes sharing
PostgreSQL and Redis (tests/cluster.py): seats and password guesses count for the cluster."""

from __future__ import annotations

import asyncio
from pathlib import Path

from .cluster import TECH_PASSWORD, cluster
from .test_hardening_limits import Browser, seat_race


async def test_simultaneous_logins_at_two_nodes_take_exactly_the_seats(
        tmp_path: Path) -> None:
    async with cluster(tmp_path, seats=2) as nodes:
        one, two = nodes.nodes
        await asyncio.gather(*(nodes.cli("technician", "add", "--email", f"t{n}@example.com",
                                         "--name", f"Tech {n}", stdin=TECH_PASSWORD + "\n")
                               for n in range(8)))
        statuses = await seat_race((one.base, two.base),
                                   [f"t{n}@example.com" for n in range(8)], TECH_PASSWORD)
        assert statuses == [303, 303, 409, 409, 409, 409], statuses


async def test_password_guesses_at_one_account_count_across_nodes(tmp_path: Path) -> None:
    async with cluster(tmp_path, trust_forwarded_for=True, login_account_free_failures=2,
                       login_account_max_delay_seconds=60) as nodes:
        one, two = nodes.nodes
        await nodes.technician("ann@example.com", "Ann")
        # Two free failures and the one that starts the delays, from addresses of their
        # own at alternate nodes (per node that would be at most two).
        statuses = []
        for n, node in enumerate((one, two, one, two)):
            async with Browser(node.base, f"10.0.{n}.1") as guesser:
                status, retry_after, _ = await guesser.log_in("ann@example.com", "wrong pw")
                statuses.append(status)
        assert statuses == [401, 401, 401, 429] and retry_after is not None
        async with Browser(one.base, "10.1.0.1") as elsewhere:
            assert (await elsewhere.log_in("ann@example.com", TECH_PASSWORD))[0] == 429
            await asyncio.sleep(int(retry_after))  # real broker processes: real time
            assert (await elsewhere.log_in("ann@example.com", TECH_PASSWORD))[0] == 303
