"""A flame graph SVG from sampled stacks (pure): the picture py-spy would draw, kept as an artefact and shown
inline, drawn from the same samples the tables are computed from (py-spy writes one output format per run)."""

from __future__ import annotations

import html
import zlib
from typing import Any

import pandas as pd

WIDTH = 1200
ROW = 16


def _tree(stacks: pd.DataFrame) -> dict[str, Any]:
    root: dict[str, Any] = {"count": 0, "children": {}}
    for thread, stack, count in zip(stacks["thread"], stacks["stack"], stacks["count"], strict=True):
        root["count"] += count
        node = root
        for name in (thread or "thread", *(f"{f} ({file.rsplit('/', 1)[-1]}:{line})" for f, file, line in stack)):
            node = node["children"].setdefault(name, {"count": 0, "children": {}})
            node["count"] += count
    return root


def svg(stacks: pd.DataFrame, title: str = "") -> str:
    """The flame graph: one box per frame, width proportional to its samples, callers below callees."""
    root = _tree(stacks)
    total = max(root["count"], 1)
    boxes: list[tuple[int, float, float, str, int]] = []

    def walk(node: dict[str, Any], depth: int, x: float) -> int:
        deepest = depth
        for name, child in sorted(node["children"].items()):
            width = child["count"] / total * WIDTH
            if width >= 0.5:
                boxes.append((depth, x, width, name, child["count"]))
                deepest = max(deepest, walk(child, depth + 1, x))
            x += width
        return deepest

    height = (walk(root, 1, 0.0) + 2) * ROW
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" font-family="monospace" '
        f'font-size="11"><text x="4" y="12">{html.escape(title or f"{total} samples")}</text>'
    ]
    for depth, x, width, name, count in boxes:
        y = height - (depth + 1) * ROW
        hue = zlib.crc32(name.split(" (")[0].encode()) % 60
        label = html.escape(name[: int(width / 7)]) if width > 21 else ""
        parts.append(
            f"<g><title>{html.escape(name)}: {count} samples ({count / total:.1%})</title>"
            f'<rect x="{x:.1f}" y="{y}" width="{width:.1f}" height="{ROW - 1}" fill="hsl({hue},85%,60%)"/>'
            f'<text x="{x + 2:.1f}" y="{y + 12}">{label}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)
