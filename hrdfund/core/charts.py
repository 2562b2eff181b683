"""Charts drawn on the server as inline SVG: no script, a title and a description for
screen readers, a table of the same figures beside each (the page shows it), and a
``viewBox`` so that one drawing fits a 390 px phone and a desktop alike. This module works
out the shapes (``Chart.shapes``); the template ``_chart.html`` writes them, escaped as
every page is, so no text of a chart is ever markup.

Written here rather than with a charting library: for the same chart pygal writes about
26 KB with a script and random ids, matplotlib about 18 KB without a title (and brings
numpy), ReportLab's SVG renderer about 11 KB with an XML prologue and fixed ids that are
not valid HTML once inlined twice; these drawings are 2 to 4 KB (README, Dashboard).
Coordinates are drawn from floats; the figures the table shows are the exact ones.
"""

import math
from dataclasses import dataclass, field

#: The drawing's box: a phone's width at one unit per CSS pixel.
WIDTH, HEIGHT = 390, 230
LEFT, RIGHT, BOTTOM = 46, 8, 34
FONT = 11
#: Roughly how wide a character of the labels is, to keep labels apart.
CHAR = 6.2
#: One colour and one dash pattern per series, so that series differ without colour too.
STYLES = [
    ("#1f5fa8", ""),
    ("#c05a00", "6 3"),
    ("#2e7d32", "2 3"),
    ("#6a1b9a", "9 3 2 3"),
]


@dataclass
class Series:
    """A named line or set of bars: its values (None where there is none) and the same
    values as the table writes them."""

    name: str
    values: list
    shown: list


@dataclass
class Chart:
    """A chart and what the page says about it: ``key`` makes its ids unique on the page;
    ``positions`` (0 to 1 along the axis) place the labels of a line chart by date, and
    ``marker`` draws a dated line (position, words) on it, such as a pool's end."""

    key: str
    title: str
    summary: str
    labels: list
    series: list
    kind: str = "bars"
    axis: object = None
    positions: list = None
    marker: tuple = None
    #: The top of the value axis when it is fixed (100 for a share in percent).
    top: float = None
    #: Whether the values are counts: the axis then marks whole numbers only.
    whole: bool = False
    shapes: dict = field(default=None, init=False)

    def __post_init__(self):
        self.shapes = draw(self)


def _n(value):
    """A coordinate, to a tenth of a unit."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def nice_top(value):
    """The axis top: the smallest of 1, 2, 2.5 or 5 times a power of ten at or above
    ``value``."""
    if value <= 0:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power  # pragma: no cover - the loop always returns


def _legend(series, top, bars=False):
    """The series' names in rows across the top, each beside a stroke as its line is drawn
    (a square of its colour for bars, which have no dash); returns (items, height
    taken)."""
    items, x, y = [], LEFT, top + FONT
    for i, one in enumerate(series):
        colour, dash = STYLES[i % len(STYLES)]
        width = 22 + len(one.name) * CHAR
        if x + width > WIDTH - RIGHT and x > LEFT:
            x, y = LEFT, y + FONT + 5
        items.append(
            {
                "x1": _n(x),
                "x2": _n(x + 16),
                "y": _n(y - 4),
                "box_y": _n(y - 9),
                "text_x": _n(x + 20),
                "text_y": _n(y),
                "colour": colour,
                "dash": "" if bars else dash,
                "box": bars,
                "name": one.name,
            }
        )
        x += width + 10
    return items, y - top + 8


def _every(labels, room):
    """Show one label in so many, so that those shown do not overlap."""
    widest = max((len(str(label)) for label in labels), default=1) * CHAR + 6
    return max(1, math.ceil(widest / room)) if room > 0 else 1


def draw(chart):
    """The shapes of the chart, as the template ``_chart.html`` writes them: coordinates
    as text, and the words each shape carries."""
    values = [v for s in chart.series for v in s.values if v is not None]
    low = min([0.0] + [float(v) for v in values])
    high = chart.top or nice_top(max([0.0] + [float(v) for v in values]))
    if chart.whole:
        high = 4 * math.ceil(nice_top(high / 4))
    if low < 0:
        low = -nice_top(-low)
    legend, taken = _legend(chart.series, 2, bars=chart.kind == "bars")
    top, bottom = 2 + taken + 6, HEIGHT - BOTTOM
    plot = WIDTH - LEFT - RIGHT

    def y(value):
        return bottom - (float(value) - low) / (high - low) * (bottom - top)

    axis = chart.axis or (lambda value: _n(value))
    grid = []
    for k in range(5):
        value = low + (high - low) * k / 4
        grid.append({"y": _n(y(value)), "text_y": _n(y(value) + 4), "label": axis(value)})
    count = max(len(chart.labels), 1)
    if chart.kind == "lines":
        places = chart.positions or [i / max(count - 1, 1) for i in range(count)]
        xs = [LEFT + p * plot for p in places]
    else:
        xs = [LEFT + (i + 0.5) * plot / count for i in range(count)]
    # Labels from the latest back, each kept only where it clears the one after it, and
    # the latest always: a label at the edge ends at its point rather than across it.
    ticks, left_edge = [], WIDTH + 100
    step = _every(chart.labels, (xs[1] - xs[0]) if len(xs) > 1 else plot)
    for i in range(len(xs) - 1, -1, -1):
        label = str(chart.labels[i]) if i < len(chart.labels) else ""
        half = len(label) * CHAR / 2
        x, anchor = (xs[i], "middle") if xs[i] + half <= WIDTH - 1 else (WIDTH - 1, "end")
        right = x + half if anchor == "middle" else x
        if (len(xs) - 1 - i) % step or right > left_edge - 4:
            continue
        left_edge = right - 2 * half
        ticks.append({"x": _n(x), "anchor": anchor, "label": label})
    marker = None
    if chart.marker is not None:
        where, words = chart.marker
        x = LEFT + where * plot
        late = where > 0.5
        marker = {
            "x": _n(x),
            "text_x": _n(x - 3 if late else x + 3),
            "text_y": top + FONT,
            "anchor": "end" if late else "start",
            "words": words,
        }
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "font": FONT,
        "left": LEFT,
        "right": WIDTH - RIGHT,
        "top": top,
        "bottom": bottom,
        "tick_y": bottom + 15,
        "axis_x": LEFT - 4,
        "legend": legend,
        "grid": grid,
        "ticks": ticks,
        "bars": _bars(chart, xs, y, plot / count) if chart.kind == "bars" else [],
        "lines": _lines(chart, xs, y) if chart.kind == "lines" else [],
        "marker": marker,
    }


def _bars(chart, xs, y, slot):
    """Side-by-side bars, one per series in each slot: (colour, rectangles) per series."""
    width = slot * 0.8 / max(len(chart.series), 1)
    groups = []
    for k, one in enumerate(chart.series):
        colour, _dash = STYLES[k % len(STYLES)]
        rects = []
        for x, value in zip(xs, one.values, strict=False):
            if value is None:
                continue
            y0, y1 = sorted((y(0), y(value)))
            rects.append(
                {
                    "x": _n(x - slot * 0.4 + k * width),
                    "y": _n(y0),
                    "width": _n(width),
                    "height": _n(max(y1 - y0, 0.5)),
                }
            )
        groups.append({"colour": colour, "rects": rects})
    return groups


def _lines(chart, xs, y):
    """One line per series, a gap where a value is missing: (colour, dash, points) per
    unbroken run."""
    lines = []
    for k, one in enumerate(chart.series):
        colour, dash = STYLES[k % len(STYLES)]
        runs, run = [], []
        for x, value in zip(xs, one.values, strict=False):
            if value is None:
                if run:
                    runs.append(run)
                run = []
                continue
            run.append(f"{_n(x)},{_n(y(value))}")
        if run:
            runs.append(run)
        lines.extend({"colour": colour, "dash": dash, "points": " ".join(r)} for r in runs)
    return lines
