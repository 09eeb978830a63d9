"""What every area's plots share: figures that render inline in Jupyter but are not kept open by pyplot."""

from __future__ import annotations

from matplotlib.axes import Axes
from matplotlib.figure import Figure


def figure(figsize: tuple[float, float], rows: int = 1, cols: int = 1) -> tuple[Figure, list[Axes]]:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(rows, cols, figsize=figsize, layout="constrained", squeeze=False)
    plt.close(fig)
    return fig, list(axes.flat)
