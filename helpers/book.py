"""Build a readable HTML "book" from executed notebooks: one page per notebook plus an index.

Why nbconvert and not Jupyter Book: nbconvert is already a pinned dependency (papermill and nbval need the
same Jupyter stack), so the book adds no build system, no Sphinx configuration, no table-of-contents file to
keep in step with the notebooks and no second set of pins. What Jupyter Book would add that we need --
navigation between pages, an index, a code toggle -- is a few lines of HTML post-processing here, which a
test (tests/test_book_browser.py) checks in a real browser.

Each page is nbconvert's ``lab`` template with:
- the ``parameters`` cell and papermill's injected copy left out (the index lists the values once);
- each exercise boxed, and each worked solution folded under it in a closed ``<details>`` (click to
  reveal; no script needed), as the notebooks advise trying first;
- wide tables scrolling inside their box;
- a navigation bar (index, previous, next) at the top;
- a "Hide code / Show code" toggle (inline CSS and JS; code is shown by default, the choice is remembered
  across pages where the browser allows local storage);
- figures embedded as ``data:`` URIs (nbconvert does this for image outputs; markdown attachments are
  embedded too), so the folder can be copied or e-mailed as it is.

- maths pre-rendered to MathML (``latex2mathml``) when the page is built, which browsers draw natively: no
  MathJax, no CDN, so a page read offline (a train, a secure environment) shows typeset formulas. The
  template's CDN scripts (MathJax, require.js) are removed, so no page asks the network for anything.

The headless-Chromium helpers at the bottom (``find_chromium``, ``dump_dom``, ``screenshot``) are shared by
``helpers.run`` (screenshot of the index after ``make run``) and the browser test.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

import nbformat
from latex2mathml.converter import convert as latex_to_mathml
from nbconvert import HTMLExporter

from helpers.params import SCHEMA

BOOK_TITLE = "IAPT Pathways: replicating Harwood et al. (2021) on a synthetic cohort"
INDEX_NAME = "index.html"
# Output MIME types nbconvert renders as <img src="data:...">; SVG is inlined as <svg> instead.
IMG_MIME_TYPES = ("image/png", "image/jpeg", "image/gif")
CHROMIUM_PATH = "/usr/bin/chromium"

_STYLE = """
<style id="iapt-book-style">
.iapt-nav{position:sticky;top:0;z-index:100;display:flex;gap:1em;align-items:center;flex-wrap:wrap;
  padding:.5em 1em;background:#f4f6f8;border-bottom:1px solid #d0d7de;font:14px/1.4 system-ui,sans-serif}
.iapt-nav a{color:#0b5cad;text-decoration:none}
.iapt-nav a:hover{text-decoration:underline}
.iapt-nav .iapt-disabled{color:#8c959f}
.iapt-nav .iapt-spacer{flex:1}
.iapt-nav button{font:inherit;padding:.2em .8em;border:1px solid #8c959f;border-radius:4px;background:#fff;
  cursor:pointer}
body.iapt-hide-code .jp-CodeCell .jp-Cell-inputWrapper{display:none}
.iapt-exercise{border:2px solid #0b5cad;border-radius:6px;background:#f3f8fd;margin:1.2em 0 .4em;padding:.3em .6em}
details.iapt-solution{border:1px solid #d0d7de;border-radius:6px;margin:0 0 1.2em;padding:.3em .6em}
details.iapt-solution>summary{cursor:pointer;color:#0b5cad;font:600 14px/1.6 system-ui,sans-serif}
.jp-OutputArea-output.jp-RenderedHTMLCommon,.jp-RenderedHTMLCommon table{max-width:100%}
.jp-OutputArea-output.jp-RenderedHTMLCommon{overflow-x:auto}
</style>
"""

_SCRIPT = """
<script id="iapt-book-script">
function iaptSetCode(hidden){
  document.body.classList.toggle('iapt-hide-code', hidden);
  var b=document.getElementById('iapt-code-toggle');
  if(b){b.textContent=hidden?'Show code':'Hide code';b.setAttribute('aria-pressed', String(hidden));}
  try{localStorage.setItem('iapt-hide-code', hidden?'1':'0');}catch(e){}
}
function iaptToggleCode(){iaptSetCode(!document.body.classList.contains('iapt-hide-code'));}
document.addEventListener('DOMContentLoaded', function(){
  var hidden=false;
  try{hidden=localStorage.getItem('iapt-hide-code')==='1';}catch(e){}
  iaptSetCode(hidden);
});
</script>
"""

_INDEX_STYLE = """
<style>
body{font:16px/1.5 system-ui,sans-serif;margin:0;color:#1f2328}
main{max-width:60em;margin:0 auto;padding:1em 2em 3em}
h1{font-size:1.8em;margin-bottom:.2em}
ul.iapt-map{list-style:none;padding-left:0}
ul.iapt-map li{margin:.5em 0}
ul.iapt-map .iapt-summary{color:#57606a}
table{border-collapse:collapse;font-size:.92em}
th,td{border:1px solid #d0d7de;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f4f6f8}
td.iapt-doc{color:#57606a}
.iapt-meta{color:#57606a;font-size:.9em}
</style>
"""


@dataclass(frozen=True)
class Page:
    """One notebook's page in the book."""

    source: Path
    html_name: str
    title: str
    summary: str
    n_images: int


# --------------------------------------------------------------------------------------------------------
# Reading notebooks
# --------------------------------------------------------------------------------------------------------


def _markdown_sources(nb: nbformat.NotebookNode) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "markdown"]


def _plain(text: str) -> str:
    """Markdown inline markup to plain text (links, emphasis, code spans), whitespace collapsed."""
    text = re.sub(r"!\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"(\*\*|__)(.+?)\1", r"\2", text)
    text = re.sub(r"(?<!\w)[*_](\S(?:.*?\S)?)[*_](?!\w)", r"\1", text)
    text = text.replace("`", "")
    return " ".join(text.split())


def notebook_title(nb: nbformat.NotebookNode, fallback: str = "") -> str:
    """The first level-1 markdown heading, or the fallback (the file's stem)."""
    for source in _markdown_sources(nb):
        for line in source.splitlines():
            match = re.match(r"^#\s+(.+?)\s*#*\s*$", line)
            if match:
                return _plain(match.group(1))
    return fallback


def notebook_summary(nb: nbformat.NotebookNode) -> str:
    """A one-line summary: ``metadata.iapt.summary`` if the author wrote one, else the first sentence
    of the first paragraph after the first heading."""
    meta = nb.metadata.get("iapt", {})
    if isinstance(meta, Mapping) and meta.get("summary"):
        return _plain(str(meta["summary"]))
    seen_heading = False
    for source in _markdown_sources(nb):
        paragraph: list[str] = []
        for line in source.splitlines() + [""]:
            stripped = line.strip()
            if re.match(r"^#\s", stripped):
                seen_heading = True
                paragraph = []
                continue
            if not seen_heading:
                continue
            if not stripped:
                if paragraph:
                    text = _plain(" ".join(paragraph))
                    match = re.match(r"(.+?[.!?])(\s|$)", text)
                    sentence = match.group(1) if match else text
                    return sentence if len(sentence) <= 240 else sentence[:237].rstrip() + "..."
                continue
            if stripped.startswith(("#", "-", "*", "+", ">", "|", "```")) or re.match(r"^\d+[.)]\s", stripped):
                paragraph = []  # headings, lists, quotes, tables, code: not a summary sentence
                continue
            paragraph.append(stripped)
    return ""


def count_image_outputs(nb: nbformat.NotebookNode) -> int:
    """How many ``<img src="data:...">`` nbconvert will make from the notebook's outputs."""
    count = 0
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if any(mime in data for mime in IMG_MIME_TYPES):
                count += 1
    return count


# --------------------------------------------------------------------------------------------------------
# Writing pages
# --------------------------------------------------------------------------------------------------------


def _nav_html(book_title: str, prev: Page | None, nxt: Page | None, *, code_toggle: bool) -> str:
    def link(page: Page | None, label: str, rel: str) -> str:
        if page is None:
            return f'<span class="iapt-disabled">{label}</span>'
        return (
            f'<a href="{html.escape(page.html_name)}" rel="{rel}" class="iapt-{rel}" '
            f'title="{html.escape(page.title)}">{label}</a>'
        )

    parts = [
        '<nav class="iapt-nav" aria-label="Book navigation">',
        f'<a href="{INDEX_NAME}" class="iapt-index" title="{html.escape(book_title)}">&#8962; Index</a>',
        link(prev, "&larr; Previous", "prev"),
        link(nxt, "Next &rarr;", "next"),
        '<span class="iapt-spacer"></span>',
    ]
    if code_toggle:
        parts.append(
            '<button type="button" id="iapt-code-toggle" aria-pressed="false" '
            'onclick="iaptToggleCode()">Hide code</button>'
        )
    parts.append("</nav>")
    return "\n".join(parts)


def _insert_after_body(page_html: str, snippet: str) -> str:
    match = re.search(r"<body[^>]*>", page_html)
    if match is None:
        raise ValueError("nbconvert output has no <body> tag: template changed?")
    return page_html[: match.end()] + "\n" + snippet + page_html[match.end():]


def _insert_before_head_end(page_html: str, snippet: str) -> str:
    idx = page_html.find("</head>")
    if idx < 0:
        raise ValueError("nbconvert output has no </head> tag: template changed?")
    return page_html[:idx] + snippet + page_html[idx:]


# nbconvert's markdown renderer leaves TeX as text ($...$, HTML-escaped) for MathJax to find. We replace it
# in the page's text, outside <code>, <pre>, <script> and <style>: $$...$$ is display maths and $...$ inline
# maths ($ followed and preceded by a non-space, as in Jupyter, so "costs $5 and $6" is not maths).
_HTML_TOKEN = re.compile(r"(<[^>]+>)")
_RAW_ELEMENTS = ("code", "pre", "script", "style", "math", "textarea")
_DISPLAY_MATH = re.compile(r"\$\$(.+?)\$\$", re.S)
_INLINE_MATH = re.compile(r"(?<![\\$\w])\$(?=\S)([^$\n]+?)(?<=\S)\$(?![\w$])")
# Scripts nbconvert's template loads from a CDN; the pages need neither (no widgets; maths is MathML).
_CDN_SCRIPT = re.compile(r"<script[^>]*\bsrc=\"https?://[^\"]*(?:mathjax|require)[^\"]*\"[^>]*>\s*</script>\s*", re.I)
_MATHJAX_CONFIG = re.compile(r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->\s*", re.S)


def _mathml(tex: str, display: str) -> str:
    return latex_to_mathml(html.unescape(tex).strip(), display=display)


def html_with_mathml(page_html: str) -> str:
    """The page with its TeX maths replaced by MathML, which a browser typesets with no script or network."""
    tokens = _HTML_TOKEN.split(page_html)
    raw_depth = 0
    for i, token in enumerate(tokens):
        if i % 2:  # a tag
            match = re.match(r"<(/?)([a-zA-Z0-9]+)", token)
            if match and match.group(2).lower() in _RAW_ELEMENTS and not token.endswith("/>"):
                raw_depth += -1 if match.group(1) else 1
        elif raw_depth == 0 and "$" in token:
            token = _DISPLAY_MATH.sub(lambda m: _mathml(m.group(1), "block"), token)
            tokens[i] = _INLINE_MATH.sub(lambda m: _mathml(m.group(1), "inline"), token)
    return "".join(tokens)


def _without_cdn(page_html: str) -> str:
    return _CDN_SCRIPT.sub("", _MATHJAX_CONFIG.sub("", page_html))


# Cells a reader of the book does not need: the parameters cell and papermill's injected copy (the index
# lists the values once).
HIDDEN_TAGS = ("parameters", "injected-parameters")
SOLUTION_SUMMARY = "Worked solution (try the exercise first)"


def _cell_ids_by_tag(nb: nbformat.NotebookNode, tag: str) -> list[str]:
    return [c.id for c in nb.cells if tag in c.metadata.get("tags", [])]


def _cell_starts(page_html: str) -> dict[str, tuple[int, int]]:
    """cell id -> (start, end) of its opening <div class="jp-Cell ..." id="cell-id=..."> tag."""
    return {m.group(1): (m.start(), m.end())
            for m in re.finditer(r'<div class="jp-Cell [^"]*" id="cell-id=([^"]+)"[^>]*>', page_html)}


def _shape_cells(page_html: str, nb: nbformat.NotebookNode) -> str:
    """Box the exercises and fold each run of solution cells into a closed <details>, with no script.

    Cells are sibling <div>s in the page's <main>, so the stretch from the first cell of a run of
    solution cells to the start of the next cell (or to </main>) is a whole number of cells."""
    solutions = set(_cell_ids_by_tag(nb, "solution"))
    exercises = set(_cell_ids_by_tag(nb, "exercise"))
    order = [c.id for c in nb.cells]
    runs: list[tuple[str, str | None]] = []  # (first solution cell, the cell after the run or None)
    i = 0
    while i < len(order):
        if order[i] in solutions:
            j = i
            while j + 1 < len(order) and order[j + 1] in solutions:
                j += 1
            runs.append((order[i], order[j + 1] if j + 1 < len(order) else None))
            i = j + 1
        else:
            i += 1
    starts = _cell_starts(page_html)
    edits: list[tuple[int, int, str]] = []  # (position, chars replaced, text), applied from the end
    for first, after in runs:
        end = starts[after][0] if after is not None else page_html.rindex("</main>")
        edits.append((starts[first][0], 0, f'<details class="iapt-solution"><summary>{SOLUTION_SUMMARY}</summary>\n'))
        edits.append((end, 0, "</details>\n"))
    for cell_id in exercises:
        start, stop = starts[cell_id]
        tag = page_html[start:stop]
        edits.append((start, stop - start, tag.replace('class="jp-Cell ', 'class="jp-Cell iapt-exercise ', 1)))
    for pos, n, text in sorted(edits, key=lambda e: e[0], reverse=True):
        page_html = page_html[:pos] + text + page_html[pos + n:]
    return page_html


def render_page(
    nb: nbformat.NotebookNode, page: Page, prev: Page | None, nxt: Page | None, book_title: str = BOOK_TITLE
) -> str:
    """One notebook as HTML (nbconvert lab template) with the book's navigation bar and code toggle."""
    nb = nbformat.from_dict(nb)  # a copy: the caller's notebook keeps its cells
    nb.cells = [c for c in nb.cells if not set(HIDDEN_TAGS) & set(c.metadata.get("tags", []))]
    for k, cell in enumerate(nb.cells):
        cell.setdefault("id", f"iapt-cell-{k}")  # notebooks older than nbformat 4.5 have none
    exporter = HTMLExporter(template_name="lab", embed_images=True)
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": page.title}})
    body = _shape_cells(html_with_mathml(_without_cdn(body)), nb)
    body = _insert_before_head_end(body, _STYLE + _SCRIPT)
    return _insert_after_body(body, _nav_html(book_title, prev, nxt, code_toggle=True))


def _render(args: tuple) -> str:
    """``render_page`` on one tuple of its arguments (what a worker process is given)."""
    return render_page(*args)


def _format_value(value: Any) -> str:
    if isinstance(value, str):
        return value if value else "(empty)"
    return str(value)


def _parameter_docs() -> dict[str, str]:
    """Parameter descriptions from helpers.params, for the index page."""
    return {name: str(getattr(spec, "doc", "")) for name, spec in SCHEMA.items()}


def render_index(
    pages: Sequence[Page],
    parameters: Mapping[str, Any] | None,
    book_title: str = BOOK_TITLE,
    run_info: Mapping[str, Any] | None = None,
) -> str:
    """The book's front page: title, notebook map, parameters used, run facts."""
    esc = html.escape
    items = "\n".join(
        f'<li><a href="{esc(p.html_name)}">{esc(p.title)}</a>'
        + (f' <span class="iapt-summary">&mdash; {esc(p.summary)}</span>' if p.summary else "")
        + "</li>"
        for p in pages
    )
    param_rows = ""
    if parameters:
        docs = _parameter_docs()
        param_rows = "\n".join(
            f"<tr><th scope=\"row\"><code>{esc(name)}</code></th><td><code>{esc(_format_value(value))}</code></td>"
            f'<td class="iapt-doc">{esc(docs.get(name, ""))}</td></tr>'
            for name, value in parameters.items()
        )
    params_html = (
        "<h2>Parameters used</h2>\n<table class=\"iapt-params\">\n"
        "<thead><tr><th>parameter</th><th>value</th><th>meaning</th></tr></thead>\n"
        f"<tbody>\n{param_rows}\n</tbody></table>"
        if param_rows
        else "<h2>Parameters used</h2>\n<p>Not recorded.</p>"
    )
    info = dict(run_info or {})
    info.setdefault("built", datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
    meta = " &middot; ".join(f"{esc(str(k))}: {esc(str(v))}" for k, v in info.items())
    first = pages[0] if pages else None
    nav = _nav_html(book_title, None, first, code_toggle=False).replace(
        f'<a href="{INDEX_NAME}" class="iapt-index"', f'<a href="{INDEX_NAME}" class="iapt-index" aria-current="page"'
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>{esc(book_title)}</title>
{_STYLE}{_INDEX_STYLE}
</head>
<body class="iapt-index-page">
{nav}
<main>
<h1>{esc(book_title)}</h1>
<p class="iapt-meta">{meta}</p>
<h2>The notebooks</h2>
<ul class="iapt-map">
{items}
</ul>
{params_html}
</main>
</body>
</html>
"""


def page_of(path: Path, nb: nbformat.NotebookNode) -> Page:
    """The book's facts about one notebook (its page name, title, summary, figures)."""
    return Page(source=path, html_name=path.stem + ".html", title=notebook_title(nb, fallback=path.stem),
                summary=notebook_summary(nb), n_images=count_image_outputs(nb))


class EarlyPages:
    """Pages rendered while a run is still executing notebooks, so the book costs little after the last one.

    ``add(executed)`` renders that notebook's page in a worker process, with its neighbours' titles read from
    the source notebooks (execution does not change a notebook's markdown). :func:`build_book` uses an early
    page only when it was rendered from exactly the arguments it would use itself (the same page facts and
    neighbours), and renders the page again otherwise, so the book is the same either way. Nothing is
    written until ``build_book``: a run that fails leaves no book.
    """

    def __init__(self, sources: Sequence[Path], title: str = BOOK_TITLE) -> None:
        self.title = title
        self.order = [Path(p).stem for p in sources]
        self.neighbour = {Path(p).stem: page_of(Path(p), nbformat.read(p, as_version=4)) for p in sources}
        self.pool = ProcessPoolExecutor(max_workers=1)
        self.pending: dict[str, tuple[tuple, Future]] = {}

    def _arguments(self, executed: Path) -> tuple:
        nb = nbformat.read(executed, as_version=4)
        i = self.order.index(executed.stem)
        prev = self.neighbour[self.order[i - 1]] if i > 0 else None
        nxt = self.neighbour[self.order[i + 1]] if i + 1 < len(self.order) else None
        return (nb, page_of(executed, nb), prev, nxt, self.title)

    def add(self, executed: Path) -> None:
        """Start rendering the page of an executed (and already scrubbed) notebook."""
        args = self._arguments(Path(executed))
        self.pending[Path(executed).stem] = (args, self.pool.submit(_render, args))

    def take(self, args: tuple) -> str | None:
        """The early page for these arguments, or None (never started, or rendered from other arguments)."""
        entry = self.pending.get(args[1].source.stem)
        if entry is None or _nav_facts(entry[0]) != _nav_facts(args):
            return None
        return entry[1].result()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def _nav_facts(args: tuple) -> tuple:
    """What a page's HTML depends on besides the notebook itself: its facts, its neighbours' names and titles,
    the book's title."""
    _, page, prev, nxt, title = args
    return (page, *((p.html_name, p.title) if p else None for p in (prev, nxt)), title)


def build_book(
    notebooks: Sequence[Path | str],
    out_dir: Path | str,
    parameters: Mapping[str, Any] | None = None,
    title: str = BOOK_TITLE,
    run_info: Mapping[str, Any] | None = None,
    jobs: int = 1,
    early: EarlyPages | None = None,
) -> Path:
    """Render executed notebooks (in the order given) into ``out_dir``; return the path of index.html.

    The index is written last, so an index.html only exists once every page has been written. ``jobs`` > 1
    renders that many pages at a time in worker processes (the same pages: each is rendered on its own).
    ``early``: pages a run already rendered while other notebooks were executing (used where they match).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    loaded: list[tuple[nbformat.NotebookNode, Page]] = []
    for path in map(Path, notebooks):
        nb = nbformat.read(path, as_version=4)
        loaded.append((nb, page_of(path, nb)))
    pages = [page for _, page in loaded]
    work = [(nb, page, pages[i - 1] if i > 0 else None, pages[i + 1] if i + 1 < len(pages) else None, title)
            for i, (nb, page) in enumerate(loaded)]
    rendered: list[str | None] = [early.take(w) if early is not None else None for w in work]
    todo = [i for i, page_html in enumerate(rendered) if page_html is None]
    if jobs > 1 and len(todo) > 1:
        with ProcessPoolExecutor(max_workers=min(jobs, len(todo))) as pool:
            for i, page_html in zip(todo, pool.map(_render, [work[i] for i in todo])):
                rendered[i] = page_html
    else:
        for i in todo:
            rendered[i] = _render(work[i])
    for (_, page, _, _, _), page_html in zip(work, rendered):
        (out / page.html_name).write_text(page_html, encoding="utf-8")
    index = out / INDEX_NAME
    index.write_text(render_index(pages, parameters, title, run_info), encoding="utf-8")
    return index


# --------------------------------------------------------------------------------------------------------
# Headless Chromium (screenshots, DOM dumps)
# --------------------------------------------------------------------------------------------------------


def find_chromium() -> str | None:
    """The Chromium binary (Debian's package puts it at /usr/bin/chromium), or None."""
    if Path(CHROMIUM_PATH).exists():
        return CHROMIUM_PATH
    return shutil.which("chromium") or shutil.which("chromium-browser")


# Every host name but 127.0.0.1 fails to resolve: the book must work with no network (a train, a secure
# environment), and a page that still reached for a CDN would show its gap in the browser test.
OFFLINE_RULES = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"


def _chromium(args: list[str], chromium: str | None, timeout: float,
              offline: bool = True) -> subprocess.CompletedProcess[str]:
    binary = chromium or find_chromium()
    if binary is None:
        raise FileNotFoundError(f"{CHROMIUM_PATH} not found: `make browser` installs it (apt-get, as root)")
    with tempfile.TemporaryDirectory(prefix="iapt-chromium-") as profile:
        cmd = [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            *([OFFLINE_RULES] if offline else []),
            *args,
        ]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def _as_url(target: str | Path) -> str:
    text = str(target)
    if re.match(r"^[a-z]+://", text):
        return text
    return Path(text).resolve().as_uri()


def dump_dom(target: str | Path, chromium: str | None = None, timeout: float = 90, offline: bool = True) -> str:
    """The DOM of a page after load (scripts run), as Chromium serialises it; no network unless offline=False."""
    result = _chromium(["--virtual-time-budget=5000", "--dump-dom", _as_url(target)], chromium, timeout, offline)
    if result.returncode != 0 or not result.stdout.strip():
        raise RuntimeError(f"chromium --dump-dom {target} failed ({result.returncode}): {result.stderr[-2000:]}")
    return result.stdout


def screenshot(
    target: str | Path,
    png: str | Path,
    chromium: str | None = None,
    window_size: tuple[int, int] = (1280, 1600),
    timeout: float = 90,
    offline: bool = True,
) -> Path:
    """A PNG screenshot of a page (URL or file path); no network unless offline=False."""
    png = Path(png).resolve()
    png.parent.mkdir(parents=True, exist_ok=True)
    if png.exists():
        png.unlink()
    result = _chromium(
        [f"--screenshot={png}", f"--window-size={window_size[0]},{window_size[1]}", _as_url(target)],
        chromium,
        timeout,
        offline,
    )
    if result.returncode != 0 or not png.exists():
        raise RuntimeError(f"chromium --screenshot {target} failed ({result.returncode}): {result.stderr[-2000:]}")
    return png


# --------------------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m helpers.book NOTEBOOK... --out DIR [--params run.json]``: (re)build a book by hand."""
    parser = argparse.ArgumentParser(prog="python -m helpers.book", description=main.__doc__)
    parser.add_argument("notebooks", nargs="+", type=Path, help="executed notebooks, in book order")
    parser.add_argument("--out", type=Path, required=True, help="output folder for the HTML pages")
    parser.add_argument("--run-json", type=Path, help="a run.json from helpers.run, for the parameters table")
    args = parser.parse_args(argv)
    parameters = None
    if args.run_json:
        parameters = json.loads(args.run_json.read_text(encoding="utf-8")).get("parameters")
    index = build_book(args.notebooks, args.out, parameters)
    print(index)
    return 0


if __name__ == "__main__":
    sys.exit(main())
