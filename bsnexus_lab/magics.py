"""``%lab``: the lab from a notebook cell, one line per question.

``%load_ext bsnexus_lab`` (automatic in the "BSNexus Lab" kernel) registers it. Built-in commands:

    %lab connect [PROFILE]      open a Lab (read-only) as ``lab``; without a profile, as the CLI resolves
    %lab health                 one row per dependency
    %lab triage                 the triage (``bsnexus-lab run triage``): its summary, then the findings, ranked
    %lab trace ID               one task followed end to end (``lab.trace(ID)``): verdict, timeline, lanes plot
    %lab help                   the commands and every area's calls

Anything else names an area, so a new area appears here without editing this module:

    %lab streams                the area's quick snapshot: its findings, frames and plots
    %lab streams consumers tasks:queue          one call: ``lab.streams.consumers("tasks:queue")``
    %%lab profile cpu 1234 10s  a call that runs while the cell's code runs (load it, then see the profile)

Line magics return their frame (``df = %lab streams``); arguments ``10s``/``500ms``/``5m`` become seconds,
``name=value`` a keyword. The ``lab`` variable is the Lab every command uses: set it yourself
(``lab = bl.connect("prod")``) or with ``%lab connect``.
"""

from __future__ import annotations

import inspect
import shlex
import threading
from collections.abc import Callable
from typing import Any

import pandas as pd
from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.display import display

from bsnexus_lab import display as lab_display
from bsnexus_lab import triage
from bsnexus_lab.areas import Area, areas, health_area
from bsnexus_lab.errors import LabError
from bsnexus_lab.lab import Lab, connect
from bsnexus_lab.text import is_duration, parse_duration
from bsnexus_lab.trace import Trace

_WORKER_NAMES = "SELECT id::text AS id, name FROM workers WHERE id::text = ANY(:ids)"


@magics_class
class LabMagics(Magics):
    @line_cell_magic
    def lab(self, line: str, cell: str | None = None) -> Any:
        """The lab in one line: ``%lab help`` lists the commands and every area's calls."""
        try:
            words = shlex.split(line)
        except ValueError as exc:
            raise UsageError(f"%lab: {exc}") from None
        command, rest = (words[0], words[1:]) if words else ("help", [])
        builtin = {
            "connect": self._connect,
            "health": self._health,
            "triage": self._triage,
            "trace": self._trace,
            "help": self._help,
        }
        try:
            if command in builtin:
                return builtin[command](*rest)
            return self._area(command, rest, cell)
        except LabError as exc:
            raise UsageError(str(exc)) from None

    # -- the Lab every command uses ---------------------------------------------------------------------
    def _lab(self) -> Lab:
        found = self.shell.user_ns.get("lab")
        return found if isinstance(found, Lab) else self._connect()

    def _connect(self, profile: str | None = None) -> Lab:
        previous = self.shell.user_ns.get("lab")
        if isinstance(previous, Lab):
            previous.close()
        lab = connect(profile)
        self.shell.user_ns["lab"] = lab
        return lab

    # -- built-ins --------------------------------------------------------------------------------------
    def _health(self) -> pd.DataFrame:
        lab = self._lab()
        return lab_display.tag(lab.health(), f"{health_area(lab.areas).name}.health")

    def _triage(self) -> lab_display.Findings:
        """What ``bsnexus-lab run triage`` does: its headline shown, its findings returned (they show as the
        first screen and carry themselves for a runbook, so neither is shown twice)."""
        result = triage.run(self._lab())
        display({"text/plain": result.shown_text(False), "text/html": result.shown_html(False)}, raw=True)
        return lab_display.Findings(result.findings)

    def _trace(self, id: str | None = None, stream: str | None = None) -> Trace:
        """The trace, returned: it shows as its verdict, its lanes and its timeline, and stays for a closer look."""
        if id is None:
            raise UsageError("%lab trace ID: a task id (or a unique prefix), an entry id, or a worker id")
        return self._lab().trace(id, stream=stream)

    def _help(self) -> None:
        lines = [(__doc__ or "").strip().replace("``", ""), "", "Areas in this installation and their calls:"]
        lines += [f"    %lab {n:10} {', '.join(_calls(a.facade))}" for n, a in areas().items() if a.facade is not None]
        print("\n".join(lines))

    # -- areas ------------------------------------------------------------------------------------------
    def _area(self, name: str, words: list[str], cell: str | None) -> Any:
        registered = areas()
        if name not in registered or registered[name].facade is None:
            known = ", ".join(n for n, a in registered.items() if a.facade is not None)
            raise UsageError(f"%lab {name}: no such command or area in this installation (areas: {known})")
        lab = self._lab()
        area = lab.areas[name]
        facade = getattr(lab, name)
        if not words:
            if cell and cell.strip():
                raise UsageError(f"%%lab {name}: name the call to run while the cell runs")
            return self._snapshot(lab, name)
        method, args, kwargs = words[0], *_arguments(words[1:])
        if method.startswith("_") or not callable(getattr(facade, method, None)):
            raise UsageError(f"lab.{name} has no call {method!r}; calls: {', '.join(_calls(type(facade)))}")
        call = getattr(facade, method)
        seconds = _duration(words[1:])
        background = (cell and cell.strip()) or seconds >= lab_display.BAR_AFTER_S
        result = self._in_background(call, args, kwargs, cell, seconds) if background else call(*args, **kwargs)
        if not isinstance(result, pd.DataFrame):
            return result
        frame = self._shown(lab, area, f"{name}.{method}", result)
        _plots(area, {method: frame})
        return frame

    def _snapshot(self, lab: Lab, name: str) -> pd.DataFrame | None:
        """The area's quick snapshot: findings, then each frame and the plots its frames allow."""
        area = lab.areas[name]
        if area.collect is None:
            calls = ", ".join(_calls(type(getattr(lab, name))))
            raise UsageError(f"%lab {name}: this area has no quick snapshot; name a call: {calls}")
        frames = {key: self._shown(lab, area, key, frame) for key, frame in area.collect(getattr(lab, name)).items()}
        if not frames:
            print(f"%lab {name}: nothing to show for {lab.target.name} (its snapshot needs settings this target lacks)")
            return None
        display(lab_display.Findings(lab.check(frames)))
        _plots(area, {key.split(".", 1)[1]: frame for key, frame in frames.items()})
        shown = list(frames.values())
        for frame in shown[1:]:
            display(frame)
        return shown[0] if shown else None

    def _shown(self, lab: Lab, area: Area, kind: str, frame: pd.DataFrame) -> pd.DataFrame:
        return lab_display.tag(frame, kind, worker_names(lab, frame), columns=area.columns.get(kind))

    def _in_background(
        self, call: Callable[..., Any], args: list[Any], kwargs: dict[str, Any], cell: str | None, seconds: float
    ) -> Any:
        """Run ``call`` on a thread while the cell's code runs in the notebook (e.g. load during a profile) and a
        bar counts the duration it was given."""
        outcome: dict[str, Any] = {}

        def target() -> None:
            try:
                outcome["result"] = call(*args, **kwargs)
            except BaseException as exc:  # handed back to the notebook's thread below
                outcome["error"] = exc

        thread = threading.Thread(target=target, name="bsnexus-lab-magic", daemon=True)
        thread.start()
        if cell and cell.strip():
            self.shell.run_cell(cell)
        lab_display.wait(thread, seconds, desc=getattr(call, "__qualname__", "lab"))
        if "error" in outcome:
            raise outcome["error"]
        return outcome["result"]


def worker_names(lab: Lab, frame: pd.DataFrame) -> dict[str, str]:
    """Worker ids in a ``consumer`` column mapped to their names in the ``workers`` table (none without one)."""
    if "consumer" not in frame.columns or lab.target.database_url is None or frame.empty:
        return {}
    try:
        rows = lab.query(_WORKER_NAMES, ids=sorted({str(c) for c in frame["consumer"].dropna()}))
    except LabError:
        return {}  # names are a nicety; health and triage report the database itself
    return dict(zip(rows["id"], rows["name"], strict=True))


def _plots(area: Area, frames: dict[str, pd.DataFrame]) -> None:
    """Every plot the area declares whose inputs (named like the probes) are among ``frames``."""
    if area.plots is None:
        return
    import matplotlib.pyplot as plt

    for plot in area.plots():
        params = inspect.signature(plot).parameters.values()
        required = [p.name for p in params if p.default is inspect.Parameter.empty]
        if required and all(name in frames and not frames[name].empty for name in required):  # no data, no plot
            figure = plot(**{p.name: frames[p.name] for p in params if p.name in frames})
            display(figure)
            plt.close(figure)


def _calls(facade: type) -> list[str]:
    return [name for name, _ in inspect.getmembers(facade, inspect.isfunction) if not name.startswith("_")]


def _arguments(words: list[str]) -> tuple[list[Any], dict[str, Any]]:
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for word in words:
        name, sep, value = word.partition("=")
        if sep and name.isidentifier():
            kwargs[name] = _value(value)
        else:
            args.append(_value(word))
    return args, kwargs


def _duration(words: list[str]) -> float:
    """The longest duration among the arguments (``10s``, ``duration=5m``), in seconds; 0 without one."""
    values = [word.split("=", 1)[-1] for word in words]
    return max((parse_duration(v).total_seconds() for v in values if is_duration(v)), default=0.0)


def _value(word: str) -> Any:
    """``10s`` -> 10.0 (seconds), ``42`` -> 42, ``0.5`` -> 0.5, ``true``/``none``; anything else stays text."""
    if is_duration(word):
        return parse_duration(word).total_seconds()
    lowered = word.lower()
    if lowered in {"true", "false"}:
        return lowered == "true"
    if lowered == "none":
        return None
    for kind in (int, float):
        try:
            return kind(word)
        except ValueError:
            pass
    return word


def load_ipython_extension(ip: Any) -> None:
    """``%load_ext bsnexus_lab``: the ``%lab`` magics and the lab's rich displays."""
    lab_display.install(ip)
    ip.register_magics(LabMagics)
