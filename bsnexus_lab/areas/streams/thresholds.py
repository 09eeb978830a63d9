"""The streams area's thresholds, each with the reason for its default."""

from __future__ import annotations

from dataclasses import dataclass

from bsnexus_lab.thresholds import threshold


@dataclass(frozen=True)
class StreamThresholds:
    dead_consumer_idle_s: float = threshold(
        300.0,
        "Judges a consumer without a registry key only when PostgreSQL cannot give its heartbeat (and is "
        "claim_dead's default min_idle_ms): a worker heartbeats every 30 s, its key lives 90 s, and BSNexus "
        "re-reads a consumer's own pending entries at every poll. Entries idle 5 minutes whose consumer has no "
        "registry key belong to a worker that is not coming back.",
    )
    poison_deliveries: int = threshold(
        5,
        "A healthy task is delivered once, or a few times when a worker restarts mid-task; an entry redelivered "
        "this often keeps killing whoever reads it.",
    )
    registry_ttl_s: float = threshold(
        90.0,
        "A worker's worker:{id} key lives 90 s after its last heartbeat: once it expired BSNexus lists the worker "
        "offline. A key gone while workers.last_heartbeat is younger than this was evicted or deleted, not expired.",
    )
    heartbeat_write_interval_s: float = threshold(
        60.0,
        "workers.last_heartbeat is written at most once a minute (worker:db_heartbeat throttles it), so a live "
        "worker's can lag its real heartbeat by 60 s: a key gone and a heartbeat older than the registry TTL plus "
        "this (150 s, PostgreSQL's clock) is a worker dead now, whatever its entries' idle time.",
    )
    stuck_result_idle_s: float = threshold(
        300.0,
        "The orchestrator (pm-0, architect-0) processes a result in seconds and never re-reads its pending "
        "entries: one still pending after 5 minutes failed and will stay pending.",
    )
    trim_limit: int = threshold(
        1000,
        "BSNexus's trim_streams() uses XTRIM MAXLEN ~ 1000 on task streams: undelivered entries past it go. A "
        "stream trimmed to another length is named in the target's conventions.trim_limits (events:board: 5000).",
    )
    trim_warning_ratio: float = threshold(0.8, "Warn while there is still room: at 80 % of the trim limit.")
    assume_trimming: bool = threshold(
        False,
        "The public backend never calls trim_streams(). On Redis 7 the lab sees trimming (entries-added vs "
        "length, max-deleted-entry-id); on 6.2 it cannot, so set this where a deployment schedules it.",
    )
    allowed_lag: int = threshold(
        0, "Burrow's allowed lag. BSNexus reads one task per poll, so anything above zero means waiting work."
    )
    min_samples: int = threshold(
        5, "Burrow judges a full window of offsets; fewer samples cannot tell a stall from a pause between polls."
    )
    min_window_s: float = threshold(
        10.0, "A worker's poll blocks 5 s: a window shorter than two polls says nothing about progress."
    )
    saturation_wait_s: float = threshold(
        1800.0,
        "BSNexus tasks take minutes (an LLM agent runs each): a queue that waits while every worker is busy is "
        "normal until its oldest entry has waited several task durations; 30 minutes by default.",
    )
    bodies_limit: int = threshold(
        200, "At most this many message bodies are read for the checks that look inside (poison, QA routing)."
    )
    orchestrator_read_s: float = threshold(
        60.0,
        "BSNexus's orchestrator loop asks for new results with a 5 s block: while results wait, a loop whose "
        "consumer has not asked for a minute is not running (after a backend restart it waits for a project start).",
    )
    trace_margin_s: float = threshold(
        2.0,
        "A trace finds a task's entries by time: entry ids carry Redis's clock, the row PostgreSQL's. Two seconds "
        "covers hosts kept in step by NTP, and the publish that follows a row's commit by milliseconds.",
    )
    trace_page: int = threshold(500, "Entries per XRANGE page when a trace searches a stream: one reply of ~200 KB.")
    trace_scan_limit: int = threshold(
        5_000,
        "At most this many entries read per stream for one trace (ten pages): bounded on a stream of millions, "
        "and far more than BSNexus writes in the seconds around a task's changes.",
    )
    pending_scan_limit: int = threshold(
        100_000,
        "How many pending entries a runbook scans per group, and per consumer when looking for its longest-idle "
        "entry (XPENDING pages of 10,000): bounded cost.",
    )
