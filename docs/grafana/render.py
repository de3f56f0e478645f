"""Draws a Grafana dashboard JSON as a PNG from a Prometheus's answers (render.sh runs it).

Each panel's PromQL is asked over [start, end] (query_range), with the dashboard's variables at
"All" ($job, $namespace -> .*) and $__rate_interval at 4 scrape intervals, as Grafana sets it.
Panels are placed by their gridPos (24 columns); stat panels show the last value with the
background colour of their thresholds and a sparkline, time series panels their lines with a
legend table of last values, in the panel's unit. Grafana's dark theme, approximately.
"""

import argparse
import datetime
import json
import math
import re
import urllib.parse
import urllib.request

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402

SCRAPE_INTERVAL = 5
RATE_INTERVAL = f"{4 * SCRAPE_INTERVAL}s"
STEP = SCRAPE_INTERVAL

BACKGROUND = "#111217"
PANEL = "#181b1f"
BORDER = "#2a2d33"
TEXT = "#ccccdc"
MUTED = "#8e8e9a"
GRID = "#2c3038"
# Grafana's classic palette, in its order.
PALETTE = ["#73bf69", "#f2cc0c", "#8ab8ff", "#ff780a", "#f2495c", "#5794f2", "#b877d9",
           "#705da0", "#37872d", "#fade2a", "#447ebc", "#c15c17"]
COLOURS = {"green": "#73bf69", "red": "#f2495c", "orange": "#ff9830", "yellow": "#fade2a",
           "blue": "#5794f2"}

PX_PER_COLUMN = 75
PX_PER_ROW = 38
HEADER_PX = 70
DPI = 100


def query_range(prometheus, expr, start, end):
    params = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": STEP})
    with urllib.request.urlopen(f"{prometheus}/api/v1/query_range?{params}") as response:
        body = json.load(response)
    if body["status"] != "success":
        raise SystemExit(f"prometheus refused {expr}: {body}")
    return body["data"]["result"]


def expand(expr):
    return (expr.replace("$__rate_interval", RATE_INTERVAL)
            .replace('=~"$job"', '=~".*"')
            .replace('=~"$namespace"', '=~".*"'))


def legend(fmt, labels):
    if not fmt:
        return ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) or "value"
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), fmt).strip()


def format_value(value, unit):
    if value is None or math.isnan(value):
        return "-"
    if unit == "s":
        if value == 0:
            return "0 s"
        if value < 1e-3:
            return f"{value * 1e6:.0f} µs"
        if value < 1:
            return f"{value * 1e3:.3g} ms"
        return f"{value:.3g} s"
    if unit == "ops":
        return f"{value:.3g} ops/s"
    if value == int(value):
        return f"{int(value)}"
    return f"{value:.3g}"


def threshold_colour(panel, value):
    steps = panel["fieldConfig"]["defaults"].get("thresholds", {}).get("steps", [])
    colour = "green"
    for step in steps:
        if step["value"] is None or (value is not None and value >= step["value"]):
            colour = step["color"]
    return COLOURS.get(colour, colour)


def series_of(prometheus, panel, start, end):
    """[(legend, [datetime], [value])] for every target of the panel."""
    out = []
    for target in panel.get("targets", []):
        for result in query_range(prometheus, expand(target["expr"]), start, end):
            times = [datetime.datetime.fromtimestamp(float(t)) for t, _ in result["values"]]
            values = [float(v) for _, v in result["values"]]
            out.append((legend(target.get("legendFormat"), result["metric"]), times, values))
    return out


def last(values):
    for v in reversed(values):
        if not math.isnan(v):
            return v
    return None


def panel_box(fig, panel, total_rows):
    grid = panel["gridPos"]
    width_px = 24 * PX_PER_COLUMN
    height_px = total_rows * PX_PER_ROW + HEADER_PX
    pad = 4
    left = (grid["x"] * PX_PER_COLUMN + pad) / width_px
    bottom = (height_px - HEADER_PX - (grid["y"] + grid["h"]) * PX_PER_ROW + pad) / height_px
    width = (grid["w"] * PX_PER_COLUMN - 2 * pad) / width_px
    height = (grid["h"] * PX_PER_ROW - 2 * pad) / height_px
    return left, bottom, width, height


def draw_frame(fig, box, colour=PANEL):
    left, bottom, width, height = box
    fig.patches.append(FancyBboxPatch(
        (left, bottom), width, height, boxstyle="round,pad=0,rounding_size=0.003",
        transform=fig.transFigure, facecolor=colour, edgecolor=BORDER, linewidth=1, zorder=-1))


def draw_title(fig, box, title, colour=TEXT):
    left, bottom, width, height = box
    fig.text(left + 0.006, bottom + height - 0.008, title, color=colour, fontsize=11,
             fontweight="bold", va="top", ha="left")


def draw_stat(fig, box, panel, series):
    unit = panel["fieldConfig"]["defaults"].get("unit", "short")
    values = series[0][2] if series else []
    value = last(values) if values else None
    colour = threshold_colour(panel, value)
    draw_frame(fig, box, colour)
    draw_title(fig, box, panel["title"], "#ffffff")
    left, bottom, width, height = box
    if series and panel.get("options", {}).get("graphMode") == "area":
        ax = fig.add_axes((left, bottom, width, height * 0.45))
        ax.fill_between(series[0][1], values, color="#ffffff", alpha=0.18, linewidth=0)
        ax.plot(series[0][1], values, color="#ffffff", alpha=0.5, linewidth=1)
        top = max([v for v in values if not math.isnan(v)] or [1])
        ax.set_ylim(0, top * 1.25 or 1)
        ax.set_xlim(series[0][1][0], series[0][1][-1])
        ax.axis("off")
    text = format_value(value, unit) if value is not None else "No data"
    fig.text(left + width / 2, bottom + height * 0.5, text, color="#ffffff", fontsize=30,
             fontweight="bold", ha="center", va="center")


def draw_timeseries(fig, box, panel, series):
    unit = panel["fieldConfig"]["defaults"].get("unit", "short")
    draw_frame(fig, box)
    draw_title(fig, box, panel["title"])
    left, bottom, width, height = box
    plot_width = width * 0.56
    ax = fig.add_axes((left + width * 0.075, bottom + height * 0.12, plot_width,
                       height * 0.70))
    ax.set_facecolor(PANEL)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.grid(True, color=GRID, linewidth=0.8)
    ax.tick_params(colors=MUTED, labelsize=8, length=0)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(
        lambda v, _: format_value(v, unit)))
    legend_x = left + width * 0.075 + plot_width + width * 0.02
    legend_top = bottom + height - 0.045
    fig.text(legend_x, legend_top, "Name", color=MUTED, fontsize=8, va="top")
    fig.text(left + width - 0.006, legend_top, "Last *", color=MUTED, fontsize=8, va="top",
             ha="right")
    shown = [s for s in series if any(not math.isnan(v) for v in s[2])]
    shown.sort(key=lambda s: s[0])
    line_height = 0.0175
    rows = int((legend_top - bottom - 0.01) / line_height) - 1
    for i, (name, times, values) in enumerate(shown):
        colour = PALETTE[i % len(PALETTE)]
        ax.plot(times, values, color=colour, linewidth=1.4)
        if i < rows:
            y = legend_top - (i + 1) * line_height
            fig.text(legend_x, y, "▬ ", color=colour, fontsize=8, va="top")
            fig.text(legend_x + 0.012, y, name, color=TEXT, fontsize=8, va="top")
            fig.text(left + width - 0.006, y, format_value(last(values), unit), color=TEXT,
                     fontsize=8, va="top", ha="right")
    if len(shown) > rows:
        fig.text(legend_x, legend_top - (rows + 1) * line_height,
                 f"... {len(shown) - rows} more", color=MUTED, fontsize=8, va="top")
    if not shown:
        ax.text(0.5, 0.5, "No data", color=MUTED, fontsize=12, ha="center", va="center",
                transform=ax.transAxes)
        ax.set_xticks([])
        ax.set_yticks([])
    else:
        ax.set_ylim(bottom=0)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prometheus", help="ask this Prometheus")
    parser.add_argument("--start", type=float)
    parser.add_argument("--end", type=float)
    parser.add_argument("--save", help="also write the answers here (JSON), for --load")
    parser.add_argument("--load", help="draw from answers saved by --save, no Prometheus")
    parser.add_argument("--dashboard", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    if args.load:
        with open(args.load) as f:
            saved = json.load(f)
        args.start, args.end = saved["start"], saved["end"]
    elif not (args.prometheus and args.start and args.end):
        parser.error("--prometheus, --start and --end, or --load")

    with open(args.dashboard) as f:
        dashboard = json.load(f)
    panels = dashboard["panels"]
    total_rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels)
    fig = plt.figure(figsize=(24 * PX_PER_COLUMN / DPI,
                              (total_rows * PX_PER_ROW + HEADER_PX) / DPI), dpi=DPI)
    fig.patch.set_facecolor(BACKGROUND)
    span = datetime.timedelta(seconds=int(args.end - args.start))
    fig.text(0.006, 1 - 18 / fig.bbox.height, dashboard["title"], color=TEXT, fontsize=16,
             fontweight="bold", va="top")
    fig.text(0.006, 1 - 46 / fig.bbox.height,
             f"{dashboard['description']}   Job: All   Namespace: All   Last {span} "
             "(kuvert dev + 2 × kuvert run, scraped by Prometheus; docs/grafana/render.sh)",
             color=MUTED, fontsize=9, va="top")
    answers = {}
    for panel in panels:
        box = panel_box(fig, panel, total_rows)
        if args.load:
            series = [(name, [datetime.datetime.fromtimestamp(t) for t in times], values)
                      for name, times, values in saved["panels"][str(panel["id"])]]
        else:
            series = series_of(args.prometheus, panel, args.start, args.end)
        answers[str(panel["id"])] = [(name, [t.timestamp() for t in times], values)
                                     for name, times, values in series]
        if panel["type"] == "stat":
            draw_stat(fig, box, panel, series)
        else:
            draw_timeseries(fig, box, panel, series)
    fig.savefig(args.out, dpi=DPI, facecolor=BACKGROUND)
    if args.save:
        with open(args.save, "w") as f:
            json.dump({"start": args.start, "end": args.end, "panels": answers}, f)


if __name__ == "__main__":
    main()
