"""The live process's part in tracing one task, when the task waits on the orchestrator (AROUND): every
thread's stack right now (one py-spy dump).

py-spy sees threads, not coroutines: an orchestrator loop parked on an ``await`` that never returns shows as
an idle event loop (``select``/``epoll``), exactly like a loop with nothing to do. The trace says so rather
than read "idle" as "not running"; whether the loop reads at all is the stream's to say (its consumer's idle).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from bsnexus_lab.areas.profile import pyspy
from bsnexus_lab.areas.profile.processes import main_pid
from bsnexus_lab.errors import LabError
from bsnexus_lab.findings import Unavailable
from bsnexus_lab.timeline import Part, Subject, events

if TYPE_CHECKING:
    from bsnexus_lab.context import Context

IDLE_NOTE = (
    "py-spy shows threads, not coroutines: an await that never returns reads as this idle event loop, the same "
    "as a loop with nothing to do"
)


async def around(ctx: Context, subject: Subject) -> Part:
    if subject.facts.get("waits_on") != "orchestrator":
        return Part()
    target = ctx.target
    if target.process is None:
        return Part(unavailable=(("the service's stacks", Unavailable(
            "no process configured for this target", remedy="set process (the backend's uvicorn) to see its stacks"
        )),))  # fmt: skip
    try:
        stacks = await pyspy.dump(main_pid(target.process))
    except LabError as exc:
        return Part(unavailable=(("the service's stacks", Unavailable.from_error(exc)),))
    now = datetime.now(UTC)
    rows = []
    for (thread, idle), frames in stacks.groupby(["thread", "idle"], sort=False):
        top = frames.sort_values("depth").iloc[0]
        where = f"{top['function']} ({str(top['file']).rsplit('/', 1)[-1]}:{top['line']})"
        rows.append(
            {
                "time": now,
                "event": f"thread {thread} {'idle' if idle else 'active'}",
                "detail": f"{where}" + (f"; {IDLE_NOTE}" if idle else ""),
            }
        )
    return Part(events=events(rows, "process"), facts={"stacks": stacks.attrs.get("text", "")})
