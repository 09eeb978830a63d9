"""Service logs: BSNexus's own log files read into frames, errors grouped, correlated with stream evidence."""

from bsnexus_lab.areas.logs.errors import grouped, shape
from bsnexus_lab.areas.logs.read import files, read

__all__ = ["files", "grouped", "read", "shape"]
