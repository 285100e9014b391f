"""The documentation site (``docs/``): it builds with warnings as errors, and headless Chromium shows it: pages
render, every gallery image loads, every internal link and anchor resolves. Marked ``docs`` (and ``slow``): run
with ``python -m pytest -m docs``. Without Sphinx or Chromium the tests skip, and fail under ``CI=true``."""

import json
import os
import shutil
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

pytestmark = [pytest.mark.docs, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = ["index", "install", "api", "cli", "conventions", "architecture", "results/index", "auto_examples/index",
         *(f"guide/{name}" for name in ("samples", "relaxation", "loading", "probing", "campaigns", "predictors",
                                        "images", "oxides"))]
"""Pages the site must have (besides one per gallery example and one per benchmark results file)."""
BROWSER_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
                 "--virtual-time-budget=20000"]


def _missing(what: str):
    """Skip, or fail under CI=true, when a tool the docs need is not installed."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is missing (CI=true: the docs tests must run)")
    pytest.skip(f"{what} is missing")


def _browser() -> str:
    found = next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome")
                  if shutil.which(name)), None)
    return found or _missing("headless Chromium (Debian: apt-get install chromium)")


class _Links(HTMLParser):
    """The ids of a page, the URLs it points to (``href`` of a and link, ``src`` of img and script) and its text."""

    def __init__(self):
        super().__init__()
        self.ids, self.urls, self.images, self.text = set(), [], [], []

    def handle_data(self, data):
        self.text.append(data)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag in ("a", "link") and attrs.get("href"):
            self.urls.append(attrs["href"])
        if tag in ("img", "script") and attrs.get("src"):
            self.urls.append(attrs["src"])
            if tag == "img":
                self.images.append(attrs["src"])


def _parse(page: Path) -> _Links:
    parser = _Links()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The site built with ``-W`` into a temporary folder (gallery outputs and results pages are generated in
    docs/, as sphinx-gallery does; examples whose source did not change are not run again)."""
    try:
        import numpydoc  # noqa: F401
        import pydata_sphinx_theme  # noqa: F401
        import sphinx  # noqa: F401
        import sphinx_gallery  # noqa: F401
        import sphinxarg  # noqa: F401
    except ImportError as exc:
        _missing(f"the docs dependencies (pip install '.[docs]': {exc.name})")
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    start = time.perf_counter()
    build = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
                            "-d", str(out / "doctrees"), str(DOCS), str(out / "html")],
                           capture_output=True, text=True, env=env, timeout=1800)
    seconds = time.perf_counter() - start
    assert build.returncode == 0, f"sphinx-build -W failed:\n{build.stdout[-4000:]}\n{build.stderr[-8000:]}"
    html = out / "html"
    print(f"docs built in {seconds:.1f} s: {len(list(html.rglob('*.html')))} pages")
    return html


def test_every_page_is_built(site):
    examples = sorted(p.stem for p in (DOCS / "examples").glob("plot_*.py"))
    results = sorted(p.stem for p in (ROOT / "benchmarks" / "results").glob("*.jsonl"))
    expected = PAGES + [f"auto_examples/{name}" for name in examples] + [f"results/{name}" for name in results]
    missing = [name for name in expected if not (site / f"{name}.html").is_file()]
    assert not missing, f"pages not built: {missing}"
    assert len(examples) >= 7 and results, "the gallery and the results pages are part of the site"


def test_internal_links_and_anchors_resolve(site):
    """Every relative href/src of every page points to a file of the site, and every #fragment to an id there
    (``_static`` holds the theme's assets, among them Jinja templates named .html, not pages)."""
    pages = {page: _parse(page) for page in site.rglob("*.html") if "_static" not in page.relative_to(site).parts}
    broken = []
    for page, parsed in pages.items():
        for url in parsed.urls:
            parts = urlsplit(url)
            if parts.scheme or parts.netloc or url.startswith(("mailto:", "javascript:", "data:")):
                continue
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file() or site.resolve() not in target.parents:
                broken.append(f"{page.relative_to(site)}: {url}")
            elif parts.fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else _parse(target).ids
                if unquote(parts.fragment) not in ids:
                    broken.append(f"{page.relative_to(site)}: {url} (no id {parts.fragment!r})")
    assert not broken, f"{len(broken)} internal links do not resolve:\n" + "\n".join(broken[:40])


def test_the_browser_renders_the_pages(site):
    """Chromium loads each main page and the theme's page (navigation, title, body text) is in its DOM."""
    browser = _browser()
    checks = {"index": "Predict where and when a disordered solid breaks", "api": "SoftnessSVM",
              "cli": "--slurm-jobs", "auto_examples/plot_00_newcomer": "threshold map",
              "results/index": "Benchmark results", "guide/campaigns": "dask-jobqueue"}
    for name, text in checks.items():
        dom = subprocess.run([browser, *BROWSER_FLAGS, "--dump-dom", (site / f"{name}.html").as_uri()],
                             capture_output=True, text=True, timeout=120).stdout
        assert "bd-header" in dom and "<h1" in dom, f"{name}: the theme's page did not render"
        assert text in dom, f"{name}: {text!r} not on the rendered page"


def test_the_browser_loads_every_gallery_image(site, tmp_path):
    """Every image of the gallery pages is decoded by Chromium (naturalWidth > 0), read from a harness page."""
    browser = _browser()
    images = sorted({(page.parent / unquote(urlsplit(src).path)).resolve().as_uri()
                     for page in (site / "auto_examples").glob("*.html") for src in _parse(page).images
                     if not urlsplit(src).scheme})
    assert len(images) >= 14, f"expected a figure and a thumbnail per example, found {len(images)} images"
    harness = tmp_path / "images.html"
    harness.write_text(
        "<!DOCTYPE html><html><body><pre id='result'>pending</pre>"
        + "".join(f"<img src='{uri}'>" for uri in images)
        + "<script>window.addEventListener('load', () => {document.getElementById('result').textContent = "
          "JSON.stringify(Array.from(document.images, i => [i.src, i.naturalWidth]));});</script></body></html>")
    dom = subprocess.run([browser, *BROWSER_FLAGS, "--dump-dom", harness.as_uri()], capture_output=True, text=True,
                         timeout=120).stdout
    start = dom.index("<pre id=\"result\">") + len("<pre id=\"result\">")
    loaded = json.loads(dom[start:dom.index("</pre>", start)].replace("&quot;", '"'))
    failed = [src for src, width in loaded if width == 0]
    assert len(loaded) == len(images) and not failed, f"images Chromium could not load: {failed}"


def test_results_pages_come_from_the_benchmark_files(site):
    """Each results page shows its benchmark's figures with the date, machine and command of each run."""
    for path in (ROOT / "benchmarks" / "results").glob("*.jsonl"):
        records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        page = "".join(_parse(site / "results" / f"{path.stem}.html").text)
        for record in records:
            assert record["figure"] in page and record["date"] in page and record["machine"]["cpu"] in page
        assert records[0]["command"] in page


def test_summary_tables_a_benchmark_wrote_are_on_its_page(site):
    """The predictor comparison (``benchmarks/compare.py``) writes its tables beside its records; the page shows
    every row."""
    for path in (ROOT / "benchmarks" / "results").glob("*.tables.json"):
        page = "".join(_parse(site / "results" / f"{path.name.split('.')[0]}.html").text)
        for table in json.loads(path.read_text()):
            assert table["columns"][-1] in page
            for row in table["rows"]:
                assert all(str(cell) in page for cell in row[2:5])


def test_the_comparison_report_page_renders_its_tables(tmp_path):
    """``benchmarks/results/compare.html`` (the report page of the predictor comparison) opens in headless
    Chromium and shows its tables."""
    from glassfrac.report.html import ink, screenshot

    _browser()
    page = ROOT / "benchmarks" / "results" / "compare.html"
    tables = json.loads(page.with_name("compare.tables.json").read_text())
    text = "".join(_parse(page).text)
    assert all(t["caption"] in text and all(str(row[2]) in text for row in t["rows"]) for t in tables)
    shot = ink(screenshot(page, tmp_path / "compare.png", height=1600))
    assert shot["non_white"] > 0.05  # a page of tables, not a blank one
