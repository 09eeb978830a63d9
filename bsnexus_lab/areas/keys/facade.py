"""``lab.keys``: the keyspace audit as a plain call."""

from __future__ import annotations

from bsnexus_lab.areas.keys import audit as walk
from bsnexus_lab.context import Facade


class Keys(Facade):
    """``lab.keys``: every key's type, TTL and memory, grouped by prefix, in one gentle pass."""

    def audit(
        self,
        match: str | None = None,
        sample: int | None = None,
        *,
        keys_per_s: float | None = None,
        progress: bool = True,
    ) -> walk.Audit:
        """Walk the whole keyspace (every primary of a cluster): by_prefix, biggest, by_type, by_node, totals.

        ``sample`` stops after about that many keys and extrapolates (labelled estimates); ``keys_per_s``
        caps the pace (off by default); ``match`` is a SCAN MATCH pattern.
        """
        t = self.thresholds
        return self._run(
            walk.audit(
                self._ctx,
                match,
                sample,
                depth=t.prefix_depth,
                top=t.top,
                keys_per_s=keys_per_s,
                progress=progress,
            )
        )
