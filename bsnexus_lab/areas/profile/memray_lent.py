"""Sent into a target whose environment has no memray: lend it the lab's memray while memray starts.

Only the top-level names memray needs from site-packages (``LENT``) become findable from the lab's
site-packages folder, by a meta-path finder placed *last*: the target's own packages are always found first,
so none of them is ever shadowed. The finder is removed as soon as the block (the import and the tracker's
start) ends; submodules load through the packages' own ``__path__``. Whether the mixture loads is proven first
by a dry run in a child of the target's interpreter. Standard library only.
"""

import contextlib
import importlib.machinery
import sys

LENT = ("memray", "rich", "typing_extensions")  # what memray imports from site-packages to start a Tracker


class _Lender:
    def __init__(self, site: str, names: tuple[str, ...]) -> None:
        self.site, self.names = site, names

    def find_spec(self, name: str, path: object = None, target: object = None) -> object:
        return importlib.machinery.PathFinder.find_spec(name, [self.site]) if name in self.names else None


@contextlib.contextmanager
def lent(site: str, names: tuple[str, ...] = LENT):  # type: ignore[no-untyped-def]
    """``names`` findable from ``site`` within the block only, after everything the target finds itself."""
    finder = _Lender(site, names)
    sys.meta_path.append(finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)
