"""Findings: the model (:mod:`.model`) apart from its renderings (:mod:`.render`) and notebook I/O."""

from bsnexus_lab.findings.model import (
    Finding,
    Kind,
    Severity,
    Unavailable,
    flatten,
    link,
    not_checked,
    rank_key,
    ranked,
    worst,
)
from bsnexus_lab.findings.notebook import MIME_TYPE, emit, from_notebook
from bsnexus_lab.findings.render import to_html, to_json, to_text

__all__ = [
    "MIME_TYPE",
    "Finding",
    "Kind",
    "Severity",
    "Unavailable",
    "emit",
    "flatten",
    "from_notebook",
    "link",
    "not_checked",
    "rank_key",
    "ranked",
    "to_html",
    "to_json",
    "to_text",
    "worst",
]
