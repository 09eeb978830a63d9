"""The verdict: one function from a run's findings and how its execution ended to its status and exit code.

    status        exit                 when
    interrupted   128 + the signal     SIGINT (130) or SIGTERM (143) stopped the kernel
    timed-out     2 (EXIT_FAILED)      the whole-run timeout killed the kernel
    dead-kernel   2                    the kernel died
    failed        2                    a cell raised, the notebook could not be read back, or no finding was emitted
    findings      1 (EXIT_FINDINGS)    a finding counts: at least ``fail_on``, not a configuration risk (unless
                                       ``fail_on_config``), not acknowledged at its severity or worse, and, with
                                       ``fail_on_new``, not in the previous run; a "not checked" finding counts
                                       only with ``fail_on_not_checked`` (``--fail-on not-checked``), then
                                       whatever its severity (still subject to acks and ``fail_on_new``)
    ok            0 (EXIT_OK)          none counts

Findings are judged by :attr:`~bsnexus_lab.findings.Finding.key`, the key the history, acknowledgements and
diffs use; explained findings count like top-level ones, each at its own severity. A check that could not look
is neither a problem nor its absence, so by default it never fails a run: a scheduler is paged for what is
wrong, and asks for "could not look" explicitly.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from bsnexus_lab.errors import EXIT_FAILED, EXIT_FINDINGS, EXIT_OK, STATUS, exit_interrupted
from bsnexus_lab.execute import Outcome
from bsnexus_lab.findings import Finding, Kind, Severity, flatten

NO_FINDINGS = "the runbook emitted no findings (no bl.emit(...) cell ran)"


@dataclass(frozen=True)
class Verdict:
    status: str
    exit_code: int
    error: str | None = None
    acknowledged: tuple[str, ...] = ()  # keys that would have counted but are acknowledged


def judge(
    findings: Iterable[Finding],
    outcome: Outcome,
    *,
    fail_on: Severity = Severity.WARNING,
    fail_on_config: bool = False,
    acks: Mapping[str, Severity] | None = None,
    previous: Collection[str] | None = None,
    fail_on_not_checked: bool = False,
) -> Verdict:
    """Status and exit code, decided once. ``acks`` maps a key to the severity it is acknowledged at;
    ``previous`` holds the keys of the previous run (``--fail-on new``), None to count every finding."""
    findings = list(findings)
    counting, silenced = [], []
    for finding in flatten(findings):
        if finding.kind is Kind.NOT_CHECKED:
            if not fail_on_not_checked:
                continue
        elif (finding.kind is Kind.CONFIG and not fail_on_config) or finding.severity.rank < fail_on.rank:
            continue
        acked = (acks or {}).get(finding.key)
        if acked is not None and finding.severity.rank <= acked.rank:
            silenced.append(finding.key)
        elif previous is None or finding.key not in previous:
            counting.append(finding.key)
    acknowledged = tuple(silenced)
    if outcome.signum is not None:
        return Verdict(outcome.failure or "interrupted", exit_interrupted(outcome.signum), outcome.error, acknowledged)
    if outcome.failure is not None:
        return Verdict(outcome.failure, EXIT_FAILED, outcome.error, acknowledged)
    if not findings:
        return Verdict(STATUS[EXIT_FAILED], EXIT_FAILED, NO_FINDINGS, acknowledged)
    exit_code = EXIT_FINDINGS if counting else EXIT_OK
    return Verdict(STATUS[exit_code], exit_code, None, acknowledged)
