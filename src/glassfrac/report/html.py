"""The HTML report of a campaign: ``<campaign>/report.html`` plus figures in ``<campaign>/report/``.

Sections: the campaign summary (counts, compute time, provenance), summary figures (rupture
strain against disorder, all stress–strain curves of each test coloured by disorder, ring-size
distributions), the sections that later steps left in the campaign folder (below), a table of
every sample, the failed samples with their errors, and one section per sample showing the
figures its stages listed (rings, stress–strain with events, crack, shear events, threshold
map). Images are linked by relative paths, so the campaign folder can be moved or served as it
is. Only the first ``max_samples`` samples get a section of their own; all appear in the table.

A step after the campaign (a predictor, an attention map) adds a section by writing
``<campaign>/<step>/report.json``: ``{"title": str, "text": str, "table": [[name, value], ...],
"tables": [{"caption": str, "columns": [str, ...], "rows": [[value, ...], ...]}, ...],
"figures": [{"title": str, "path": path relative to the campaign folder}, ...]}`` (every key but
the title optional). Sections appear in folder-name order.
"""

import html
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.image import imread

from glassfrac.core.errors import GlassfracError
from glassfrac.core.files import atomic_open, atomic_path, save_png

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; font-size: .9em; margin: .5em 0; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: right; }
th { background: #f3f3f3; } td.l, th.l { text-align: left; }
.figs { display: flex; flex-wrap: wrap; gap: 1em; }
.figs figure { margin: 0; width: 360px; } .figs img { width: 100%; border: 1px solid #eee; }
figcaption { font-size: .85em; color: #555; }
.bad { color: #b00; } code { font-size: .9em; }
caption { text-align: left; font-weight: 600; padding: .3em 0; }
table.many { font-size: .75em; } table.many th, table.many td { padding: .2em .35em; }
.scroll { overflow-x: auto; }
"""
MANY_COLUMNS = 10
"""Tables with more columns than this get a smaller font, and every table scrolls inside the page rather than
pushing the page wider (the demo's per-sample table has 14)."""

TABLE_COLUMNS = (
    ("sample_id", "sample"), ("kind", "kind"), ("nx", "NX"), ("ny", "NY"), ("mu2_target", "μ₂ target"),
    ("mu2", "μ₂"), ("natoms", "atoms"), ("rupture_strain", "rupture strain"),
    ("tension_peak_stress", "peak stress (tension)"), ("shear_events", "shear events"),
    ("shear_event1_strain", "1st shear event"), ("probe_threshold_mean", "mean Δτ (N/m)"),
    ("probe_goodness_event1", "goodness, 1st event"), ("seconds", "time (s)"),
)
"""Columns of the sample table (key, title); a column no row has a value for is left out."""


def write_report(store, status: dict, max_samples: int = 100) -> Path:
    """Write the report of the campaign in ``store`` (a :class:`glassfrac.campaign.store.Store`) with its
    ``status`` (:func:`glassfrac.campaign.runner.campaign_status`); returns the path of ``report.html``."""
    rows = store.rows()
    figdir = store.directory / "report"
    figdir.mkdir(parents=True, exist_ok=True)
    summary_figures = _summary_figures(rows, figdir)
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
             f"<title>glassfrac campaign {_e(store.name)}</title><style>{STYLE}</style></head><body>",
             f"<h1>Campaign <code>{_e(store.name)}</code></h1>", _summary(status, rows, store)]
    if summary_figures:
        parts.append("<h2>Overview</h2><div class='figs'>")
        parts += [_figure(f"report/{name}", title) for name, title in summary_figures]
        parts.append("</div>")
    parts += [_step_section(path) for path in sorted(store.directory.glob("*/report.json"))]
    parts.append(_sample_table(rows))
    if status["failures"]:
        parts.append("<h2>Failed samples</h2><table><tr><th class='l'>sample</th><th class='l'>stage</th>"
                     "<th class='l'>error</th></tr>")
        parts += [f"<tr><td class='l'>{_e(f['sample_id'])}</td><td class='l'>{_e(f['stage'])}</td>"
                  f"<td class='l bad'>{_e(f['error'])}</td></tr>" for f in status["failures"]]
        parts.append("</table><p>Tracebacks: <code>failed/&lt;sample&gt;.json</code>; rerun with "
                     "<code>glassfrac campaign run CONFIG --retry-failed</code>.</p>")
    for row in rows[:max_samples]:
        parts.append(_sample_section(row))
    if len(rows) > max_samples:
        parts.append(f"<p>{len(rows) - max_samples} more samples are in the table above; their figures are in "
                     f"<code>samples/</code>.</p>")
    parts.append("</body></html>")
    path = store.directory / "report.html"
    with atomic_open(path) as handle:
        handle.write("\n".join(parts))
    return path


def write_page(path, title: str, text: str, tables: list) -> Path:
    """Write a standalone HTML page (the report's style) to ``path``: a title, a paragraph ``text`` and
    ``tables`` (``{"caption", "columns", "rows"}`` each, as in a step's section); returns ``path``."""
    body = "".join(f"<h2>{_e(t['caption'])}</h2>" + _table("", t["columns"], t["rows"]) for t in tables)
    wide = "body { max-width: none; margin: 2em; } td { white-space: nowrap; }"  # tables of many columns
    page = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{_e(title)}</title>"
            f"<style>{STYLE}{wide}</style></head><body><h1>{_e(title)}</h1><p>{_e(text)}</p>{body}</body></html>")
    with atomic_open(path) as handle:
        handle.write(page)
    return Path(path)


def browser() -> str | None:
    """Path of a Chromium (or Chrome) executable on ``PATH``, or None."""

    return next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)


def screenshot(page, png, width: int = 1280, height: int = 2400, timeout: float = 120) -> Path:
    """Render the HTML file ``page`` in headless Chromium to the PNG ``png`` (``width`` ×
    ``height`` pixels, the top of the page); returns ``png``."""

    exe = browser()
    if exe is None:
        raise GlassfracError("headless rendering needs Chromium on PATH (Debian: apt-get install chromium)")
    with tempfile.TemporaryDirectory() as work:
        shot = Path(work) / "page.png"  # Chromium picks the format by the name's suffix
        proc = subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                               "--disable-background-networking", "--disable-component-update", "--disable-sync",
                               "--hide-scrollbars", f"--user-data-dir={Path(work) / 'profile'}",
                               f"--screenshot={shot}", f"--window-size={width},{height}",
                               Path(page).resolve().as_uri()],
                              capture_output=True, text=True, timeout=timeout)
        if proc.returncode or not shot.is_file():
            raise GlassfracError(f"{exe} could not render {page}: {proc.stderr.strip()[-500:]}")
        with atomic_path(png) as tmp:
            shutil.copyfile(shot, tmp)
    return Path(png)


def ink(png) -> dict:
    """How much a screenshot shows: ``non_white`` (fraction of pixels darker than 95 % in some
    channel: text, lines, figures) and ``coloured`` (fraction with channels differing by more
    than 0.2: figures; text and tables are grey). A blank page has both near 0."""

    image = imread(png)[..., :3]
    spread = image.max(axis=-1) - image.min(axis=-1)
    return {"non_white": float(np.mean(np.any(image < 0.95, axis=-1))), "coloured": float(np.mean(spread > 0.2)),
            "width": int(image.shape[1]), "height": int(image.shape[0])}


def _e(value) -> str:
    return html.escape(str(value))


def _fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k} {_fmt(v)}" for k, v in value.items())
    return str(value)


def _figure(src: str, title: str) -> str:
    return (f"<figure><a href='{_e(src)}'><img src='{_e(src)}' alt='{_e(title)}' loading='lazy'></a>"
            f"<figcaption>{_e(title)}</figcaption></figure>")


def _summary(status: dict, rows, store) -> str:
    seconds = sum(r.get("seconds", 0.0) for r in rows)
    prov = rows[0].data.get("provenance", {}) if rows else {}
    git = prov.get("git") or {}
    versions = prov.get("versions", {})
    items = [
        ("samples requested", status["requested"]), ("done", status["done"]), ("failed", status["failed"]),
        ("pending", status["pending"]), ("store", status["database"]),
        ("compute time of the done samples", f"{seconds:.1f} s ({seconds / max(1, len(rows)):.1f} s per sample)"),
        ("config", "config.toml"),
        ("git revision", f"{git.get('revision', 'unknown')}{' (modified)' if git.get('dirty') else ''}"),
        ("versions", ", ".join(f"{k} {v}" for k, v in versions.items() if v)),
    ]
    cells = "".join(f"<tr><th class='l'>{_e(k)}</th><td class='l'>"
                    + (f"<a href='{_e(v)}'>{_e(v)}</a>" if k == "config" else _e(v)) + "</td></tr>"
                    for k, v in items)
    return f"<h2>Summary</h2><table>{cells}</table>"


def _step_section(path: Path) -> str:
    """The section a later step described in ``path`` (module docstring)."""

    try:
        s = json.loads(path.read_text())
        rows = "".join(f"<tr><th class='l'>{_e(k)}</th><td class='l'>{_e(_fmt(v))}</td></tr>"
                       for k, v in s.get("table", []))
        tables = "".join(_table(t["caption"], t["columns"], t["rows"]) for t in s.get("tables", []))
        figures = "".join(_figure(f["path"], f["title"]) for f in s.get("figures", []))
        return (f"<h2>{_e(s['title'])}</h2><p>{_e(s.get('text', ''))}</p>"
                + (f"<table>{rows}</table>" if rows else "") + tables + f"<div class='figs'>{figures}</div>")
    except (ValueError, KeyError, TypeError) as exc:
        return f"<h2>{_e(path.parent.name)}</h2><p class='bad'>{_e(path)}: unreadable section ({_e(exc)})</p>"


def _table(caption: str, columns: list, rows: list) -> str:
    """A table with a caption, a header row and one row per list (first column left-aligned)."""
    head = "".join(f"<th{' class=l' if k == 0 else ''}>{_e(c)}</th>" for k, c in enumerate(columns))
    body = "".join("<tr>" + "".join(f"<td{' class=l' if k == 0 else ''}>{_e(_fmt(v))}</td>"
                                    for k, v in enumerate(r)) + "</tr>" for r in rows)
    many = " class=many" if len(columns) > MANY_COLUMNS else ""
    return f"<div class=scroll><table{many}><caption>{_e(caption)}</caption><tr>{head}</tr>{body}</table></div>"


def _sample_table(rows) -> str:
    columns = [(key, title) for key, title in TABLE_COLUMNS if any(row.get(key) is not None for row in rows)]
    head = "".join(f"<th>{_e(title)}</th>" for _, title in columns)
    body = []
    for row in rows:
        cells = []
        for key, _ in columns:
            value = row.get(key)
            if key == "sample_id":
                cells.append(f"<td class='l'><a href='#{_e(value)}'>{_e(value)}</a></td>")
            else:
                cells.append(f"<td>{_e(_fmt(value))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<h2>Samples</h2><table><tr>{head}</tr>{''.join(body)}</table>"


def _sample_section(row) -> str:
    sid = row.sample_id
    figures = row.data.get("figures", [])
    labels = {k: v for k, v in row.key_value_pairs.items() if k not in ("campaign", "sample_id")}
    table = "".join(f"<tr><th class='l'>{_e(k)}</th><td>{_e(_fmt(v))}</td></tr>" for k, v in labels.items())
    figs = "".join(_figure(f"samples/{sid}/{f['path']}", f["title"]) for f in figures)
    events = []
    for test in ("tension", "shear"):
        for k, e in enumerate(row.data.get(test, {}).get("events", [])[:10], start=1):
            loc = ", ".join(f"{x:.1f}" for x in e.get("location", []))
            events.append(f"<tr><td class='l'>{test}</td><td>{k}</td><td>{_fmt(e.get('strain'))}</td>"
                          f"<td>{_fmt(e.get('stress_drop'))}</td><td class='l'>{_e('+'.join(e.get('kind', [])))}</td>"
                          f"<td>({_e(loc)})</td></tr>")
    event_table = ("<table><tr><th class='l'>test</th><th>event</th><th>strain</th><th>stress drop</th>"
                   "<th class='l'>kind</th><th>location (Å)</th></tr>" + "".join(events) + "</table>") if events else ""
    return (f"<h2 id='{_e(sid)}'>Sample {_e(sid)}</h2><div class='figs'>{figs}</div>"
            f"<details><summary>labels and events</summary><table>{table}</table>{event_table}</details>")


def _summary_figures(rows, figdir: Path) -> list:
    """Overview figures as PNG files in ``figdir``; returns (file name, title) pairs."""

    out = []
    if not rows:
        return out
    mu2 = np.array([r.get("mu2_target", r.get("mu2", np.nan)) for r in rows], float)
    finite = mu2[np.isfinite(mu2)]
    lo, hi = (finite.min(), finite.max()) if len(finite) else (0.0, 1.0)
    norm = (lambda v: 0.5) if hi <= lo else (lambda v: (v - lo) / (hi - lo))
    strain = np.array([r.get("rupture_strain", np.nan) for r in rows], float)
    if np.isfinite(strain).any():
        fig = Figure(figsize=(5, 3.6), dpi=110)
        ax = fig.add_subplot()
        ax.scatter([r.get("mu2", np.nan) for r in rows], strain, s=18, c="tab:red")
        ax.set_xlabel("ring-size variance μ₂ (measured)")
        ax.set_ylabel("rupture strain")
        ax.set_title("first bond break against disorder")
        save_png(fig, figdir / "rupture_vs_mu2.png")
        out.append(("rupture_vs_mu2.png", "rupture strain against disorder"))
    for test in ("tension", "shear"):
        curves = [(r, r.data[test]) for r in rows if test in r.data]
        if not curves:
            continue

        cmap = colormaps["viridis"]
        fig = Figure(figsize=(5, 3.6), dpi=110)
        ax = fig.add_subplot()
        discrete = 0 < len(set(finite.tolist())) <= 6  # few disorder levels: a legend, not a colour range
        labelled = set()
        for r, entry in curves:
            c = entry["curve"]
            value = r.get("mu2_target", r.get("mu2", np.nan))
            legend = f"μ₂ target {value:.2g}" if discrete and np.isfinite(value) and value not in labelled else None
            labelled.add(value)
            ax.plot(c["strain"], c["stress"], lw=1, color=cmap(0.9 * norm(value)) if np.isfinite(value) else "0.5",
                    label=legend)
            for e in entry.get("events", [])[:6]:
                k = int(np.argmin(np.abs(np.asarray(c["strain"]) - e["strain"])))
                ax.plot(c["strain"][k], c["stress"][k], "x", ms=4, color="k")
        ax.set_xlabel("strain")
        ax.set_ylabel(f"stress ({curves[0][1].get('stress_unit', '')})")
        if discrete:
            ax.legend(frameon=False, fontsize=8)
            ax.set_title(f"{test}: {len(curves)} samples (× events)")
        else:
            ax.set_title(f"{test}: {len(curves)} samples (colour: μ₂ target {lo:.2g}–{hi:.2g}; × events)")
        ax.title.set_fontsize(9)
        save_png(fig, figdir / f"{test}_curves.png")
        out.append((f"{test}_curves.png", f"{test}: stress–strain curves"))
    sizes = [(r.get("mu2_target", np.nan), np.asarray(r.data["rings"]["sizes"])) for r in rows if "rings" in r.data]
    if sizes:
        fig = Figure(figsize=(5, 3.6), dpi=110)
        ax = fig.add_subplot()
        targets = sorted({t for t, _ in sizes}, key=lambda t: (not np.isfinite(t), t))
        bins = np.arange(3.5, 11.5)
        for t in targets[:8]:
            allsizes = np.concatenate([s for v, s in sizes if v == t or (np.isnan(v) and np.isnan(t))])
            p, _ = np.histogram(allsizes, bins=bins, density=True)
            ax.plot(bins[:-1] + 0.5, p, "o-", ms=3, label=f"μ₂ target {t:.2g}" if np.isfinite(t) else "samples")
        ax.set_xlabel("ring size")
        ax.set_ylabel("fraction of rings")
        ax.legend(frameon=False, fontsize=8)
        save_png(fig, figdir / "ring_sizes.png")
        out.append(("ring_sizes.png", "ring-size distributions"))
    return out
