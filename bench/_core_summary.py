"""The core benchmark's summary: medians of its runs, its targets and the table it prints."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import _common as c

if TYPE_CHECKING:
    from core import Config

TARGET_HTTP_RATIO = 0.5
TARGET_CHAT_P99_MS = 10.0
TARGET_MEMORY_KIB = 45.0


def summarize(cfg: Config, http: dict[str, Any], rounds: dict[str, Any]) -> dict[str, Any]:
    def med(runs: list[dict[str, Any]], *path: str) -> float:
        values = []
        for run in runs:
            value: Any = run
            for key in path:
                value = value[key]
            values.append(float(value))
        return c.median(values)

    out: dict[str, Any] = {}
    for kind in ("broker", "baseline"):
        h = http["runs"][kind]
        r = rounds[kind]
        out[kind] = {
            "http_requests_per_s": med(h, "requests_per_s"),
            "http_pairs_per_s": med(h, "pairs_per_s"),
            "http_create_p50_ms": med(h, "create", "p50_ms"),
            "http_create_p99_ms": med(h, "create", "p99_ms"),
            "http_join_p50_ms": med(h, "join", "p50_ms"),
            "http_join_p99_ms": med(h, "join", "p99_ms"),
            "http_all_p50_ms": med(h, "all", "p50_ms"),
            "http_all_p99_ms": med(h, "all", "p99_ms"),
            "http_server_cpu": med(h, "server_cpu"),
            "http_cpu_pressure": med(h, "cpu_pressure_some"),
            "http_server_cpu_ms_per_request": med(h, "server_cpu_ms_per_request"),
            "chat_achieved_rate": med(r, "chat", "achieved_send_rate"),
            "chat_p50_ms": med(r, "chat", "latency_from_send", "p50_ms"),
            "chat_p99_ms": med(r, "chat", "latency_from_send", "p99_ms"),
            "chat_max_ms": med(r, "chat", "latency_from_send", "max_ms"),
            "chat_sched_p99_ms": med(r, "chat", "latency_from_schedule", "p99_ms"),
            "chat_undelivered": med(r, "chat", "undelivered"),
            "chat_errors_total": float(sum(sum(run["chat"]["errors"].values()) for run in r)),
            "chat_server_cpu_us_per_message": med(r, "chat", "server_cpu_us_per_message"),
            "chat_server_cpu": med(r, "chat", "server_cpu"),
            "chat_client_cpu": med(r, "chat", "client_cpu"),
            "chat_client_lag_p99_ms": med(r, "chat", "client_loop_lag_p99_ms"),
            "chat_cpu_pressure": med(r, "chat", "cpu_pressure_some"),
            "memory_per_session_kib": med(r, "memory", "per_session_kib"),
            "memory_sockets_only_kib": med(r, "memory", "sockets_only_per_session_kib"),
            "memory_rss_before_mib": med(r, "memory", "rss_before_kib") / 1024,
            "setup_create_join_seconds": med(r, "memory", "create_join_seconds"),
            "setup_connect_seconds": med(r, "memory", "connect_seconds"),
        }
    b, base = out["broker"], out["baseline"]
    ratio = b["http_requests_per_s"] / base["http_requests_per_s"]
    out["targets"] = {
        "http_ratio": {"value": ratio, "target": f">= {TARGET_HTTP_RATIO}",
                       "met": ratio >= TARGET_HTTP_RATIO},
        "chat_p99_ms": {"value": b["chat_p99_ms"], "target": f"<= {TARGET_CHAT_P99_MS}",
                        "met": b["chat_p99_ms"] <= TARGET_CHAT_P99_MS
                        and b["chat_undelivered"] == 0 and b["chat_errors_total"] == 0},
        "memory_kib": {"value": b["memory_per_session_kib"], "target": f"<= {TARGET_MEMORY_KIB}",
                       "met": b["memory_per_session_kib"] <= TARGET_MEMORY_KIB},
    }
    return out


def print_table(cfg: Config, summary: dict[str, Any]) -> None:
    b, base, t = summary["broker"], summary["baseline"], summary["targets"]

    def row(name: str, key: str, fmt: str, lower_is_better: bool) -> None:
        x, y = b[key], base[key]
        ratio = x / y if y else float("nan")
        print(f"  {name:34s} {format(x, fmt):>10s} {format(y, fmt):>10s} {ratio:8.2f}x"
              f"{'  (lower is better)' if lower_is_better else ''}")

    print(f"\nMedians ({cfg.http_repeats} key runs, {cfg.rounds} session rounds)")
    print(f"  {'figure':34s} {'broker':>10s} {'baseline':>10s} {'ratio':>9s}")
    row("key create+join, req/s", "http_requests_per_s", ".0f", False)
    row("  create p50 ms", "http_create_p50_ms", ".2f", True)
    row("  create p99 ms", "http_create_p99_ms", ".2f", True)
    row("  join p50 ms", "http_join_p50_ms", ".2f", True)
    row("  join p99 ms", "http_join_p99_ms", ".2f", True)
    row("  server CPU ms per request", "http_server_cpu_ms_per_request", ".3f", True)
    row(f"chat achieved msg/s (of {cfg.rate:.0f})", "chat_achieved_rate", ".0f", False)
    row("  chat p50 ms", "chat_p50_ms", ".2f", True)
    row("  chat p99 ms", "chat_p99_ms", ".2f", True)
    row("  chat max ms", "chat_max_ms", ".1f", True)
    row("  chat p99 from schedule ms", "chat_sched_p99_ms", ".2f", True)
    row("  server CPU us per message", "chat_server_cpu_us_per_message", ".0f", True)
    row("  CPU pressure during chat", "chat_cpu_pressure", ".2f", True)
    row("memory per idle session KiB", "memory_per_session_kib", ".1f", True)
    row("  of which sockets KiB", "memory_sockets_only_kib", ".1f", True)
    print("\nTargets")
    for name, target in t.items():
        print(f"  {name:14s} {target['value']:9.2f} (target {target['target']}): "
              f"{'met' if target['met'] else 'MISSED'}")

