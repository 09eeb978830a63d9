"""The sandbox: real servers, a BSNexus-shaped world, planted faults. Probes and checks never import it."""

from bsnexus_lab.sandbox.lifecycle import Sandbox, ServerStatus
from bsnexus_lab.sandbox.scenarios import SCENARIOS

__all__ = ["SCENARIOS", "Sandbox", "ServerStatus"]
