"""The sandbox: real servers, a BSNexus-shaped world, planted faults. Probes and checks never import it."""

from bsnexus_lab.sandbox.lifecycle import Sandbox, ServerStatus, ensure
from bsnexus_lab.sandbox.scenarios import discover as all_scenarios

__all__ = ["Sandbox", "ServerStatus", "all_scenarios", "ensure"]
