"""The transfer benchmark's summary: rates against the raw ceilings, memory, the chat beside
the transfers, the targets and the table it prints."""

from __future__ import annotations

from typing import Any

import _common as c

TARGET_UPLOAD_RATIO = 0.5     # of min(loopback, disk write + fsync)
TARGET_DOWNLOAD_RATIO = 0.5   # of loopback
TARGET_RSS_GROWTH_MIB = 4.0
TARGET_CHAT_P99_MS = 10.0


def summarize(raw: dict[str, Any]) -> dict[str, Any]:
    rounds = raw["rounds"]

    def med(path: tuple[str, ...]) -> float:
        values = []
        for one in rounds:
            value: Any = one
            for key in path:
                value = value[key]
            values.append(float(value))
        return c.median(values)

    loopback = min(med(("loopback_put", "mb_per_s")), med(("loopback_get", "mb_per_s")))
    disk = med(("disk", "mb_per_s"))
    disk_read = med(("disk", "read_mb_per_s"))
    upload = med(("upload", "mb_per_s"))
    download = med(("download", "mb_per_s"))
    worst_p99 = max(max(one["upload"]["chat"]["p99_ms"], one["download"]["chat"]["p99_ms"])
                    for one in rounds)
    worst_rss = max(max(one["upload"]["rss_growth_mib"], one["download"]["rss_growth_mib"])
                    for one in rounds)
    summary = {
        "disk_write_fsync_mb_per_s": disk,
        "disk_read_cold_mb_per_s": disk_read,
        "loopback_mb_per_s": loopback,
        "upload_mb_per_s": upload,
        "download_mb_per_s": download,
        "upload_ratio": upload / min(loopback, disk),
        "download_ratio": download / loopback,
        "download_ratio_of_disk_read": download / min(loopback, disk_read),
        "rss_growth_mib_worst": worst_rss,
        "rss_warmup_growth_mib": raw["warmup"]["upload"]["rss_growth_mib"]
        + raw["warmup"]["download"]["rss_growth_mib"],
        "rss_peak_mib": max(max(one["upload"]["rss_peak_kib"], one["download"]["rss_peak_kib"])
                            for one in rounds) / 1024,
        "chat_idle_p99_ms": raw["idle"]["chat"]["p99_ms"],
        "chat_p99_ms_worst": worst_p99,
        "chat_p99_upload_ms_median": med(("upload", "chat", "p99_ms")),
        "chat_p99_download_ms_median": med(("download", "chat", "p99_ms")),
    }
    summary["targets"] = {
        "upload_ratio": [TARGET_UPLOAD_RATIO, summary["upload_ratio"] >= TARGET_UPLOAD_RATIO],
        "download_ratio": [TARGET_DOWNLOAD_RATIO,
                           summary["download_ratio"] >= TARGET_DOWNLOAD_RATIO],
        "rss_growth_mib": [TARGET_RSS_GROWTH_MIB, worst_rss <= TARGET_RSS_GROWTH_MIB],
        "chat_p99_ms": [TARGET_CHAT_P99_MS, worst_p99 <= TARGET_CHAT_P99_MS],
    }
    return summary


def print_summary(summary: dict[str, Any]) -> None:
    rows = [
        ("raw disk write + fsync", f"{summary['disk_write_fsync_mb_per_s']:.0f} MB/s", ""),
        ("raw disk read (not cached)", f"{summary['disk_read_cold_mb_per_s']:.0f} MB/s", ""),
        ("raw loopback (slower way)", f"{summary['loopback_mb_per_s']:.0f} MB/s", ""),
        ("broker upload", f"{summary['upload_mb_per_s']:.0f} MB/s",
         f"{summary['upload_ratio']:.2f}x of min(loopback, disk)"),
        ("broker download", f"{summary['download_mb_per_s']:.0f} MB/s",
         f"{summary['download_ratio']:.2f}x of loopback, "
         f"{summary['download_ratio_of_disk_read']:.2f}x of min(loopback, disk read)"),
        ("broker RSS growth (worst)", f"{summary['rss_growth_mib_worst']:.1f} MiB",
         f"peak {summary['rss_peak_mib']:.0f} MiB; the first transfer (warm-up) "
         f"+{summary['rss_warmup_growth_mib']:.1f} MiB"),
        ("chat p99 idle", f"{summary['chat_idle_p99_ms']:.2f} ms", ""),
        ("chat p99 during transfers (worst)", f"{summary['chat_p99_ms_worst']:.2f} ms",
         f"median up {summary['chat_p99_upload_ms_median']:.2f} / down "
         f"{summary['chat_p99_download_ms_median']:.2f} ms"),
    ]
    print()
    for name, value, note in rows:
        print(f"{name:36s} {value:>12s}  {note}")
    print()
    for name, (target, met) in summary["targets"].items():
        print(f"target {name:16s} {target:>8}  {'met' if met else 'MISSED'}")

