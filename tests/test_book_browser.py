"""The HTML book in a real browser: headless Chromium over http on 127.0.0.1, with no network.

Chromium runs with every host name but 127.0.0.1 unresolvable (``book.OFFLINE_RULES``), as a reader on a
train or in a secure environment would: a page that still needed a CDN would fail these checks.

Two books are checked: one from small fixture notebooks (always has a figure, exercises the code toggle's
JavaScript) and the one a real small run of the project's notebooks makes (every link from the index,
every page's title and figures). A screenshot of the real index is kept at outputs/book_index.png.
"""

from __future__ import annotations

import functools
import re
import threading
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import nbformat
import pytest
from conftest import PROJECT_ROOT

from helpers import book

pytestmark = pytest.mark.whole_run  # a real run's book, and Chromium: `make test` runs these


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:  # noqa: A002 - stdlib signature
        pass


class _DomFacts(HTMLParser):
    """Links, data-URI images, <title> and <h1> text of a dumped DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.data_images = 0
        self.title = ""
        self.h1: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "a" and a.get("href"):
            self.links.append(a["href"] or "")
        elif tag == "img" and (a.get("src") or "").startswith("data:image/"):
            self.data_images += 1
        elif tag in ("title", "h1"):
            self._in = tag
            if tag == "h1":
                self.h1.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == self._in:
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "title":
            self.title += data
        elif self._in == "h1":
            self.h1[-1] += data


def facts(dom: str) -> _DomFacts:
    parser = _DomFacts()
    parser.feed(dom)
    return parser


@pytest.fixture
def serve() -> Iterator:
    """serve(folder) -> base URL of an http server on 127.0.0.1 (ephemeral port), stopped after the test."""
    servers: list[ThreadingHTTPServer] = []

    def _serve(folder: Path) -> str:
        handler = functools.partial(_Quiet, directory=str(folder))
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield _serve
    for server in servers:
        server.shutdown()
        server.server_close()


def visible_text(dom: str) -> str:
    """The DOM without scripts, styles and code: where raw TeX would show to a reader."""
    return re.sub(r"<(script|style|code|pre)\b[^>]*>.*?</\1>", "", dom, flags=re.S)


def check_book(base: str, html_dir: Path, executed: dict[str, Path], chromium: str) -> str:
    """Open the index, follow every link to a page, check title and figures; return the index DOM."""
    index_dom = book.dump_dom(base + "index.html", chromium)
    index = facts(index_dom)
    assert index.title.strip() == book.BOOK_TITLE
    pages = [h for h in dict.fromkeys(index.links) if h != "index.html" and not re.match(r"^[a-z]+:", h)]
    assert sorted(p.removesuffix(".html") for p in pages) == sorted(executed), "index does not link every page"
    assert "Parameters used" in index_dom
    for href in pages:
        nb = nbformat.read(executed[href.removesuffix(".html")], as_version=4)
        dom = book.dump_dom(base + href, chromium)
        page = facts(dom)
        title = book.notebook_title(nb, fallback=href.removesuffix(".html"))
        assert page.title.strip() == title, f"{href}: page title {page.title!r}, expected {title!r}"
        assert any(title in h for h in page.h1), f"{href}: no <h1> with {title!r}"
        expected = book.count_image_outputs(nb)
        assert page.data_images >= expected, f"{href}: {page.data_images} embedded figures, expected {expected}"
        assert 'class="iapt-nav"' in dom and 'id="iapt-code-toggle"' in dom, f"{href}: no navigation bar"
        shown = visible_text(dom)
        assert "$$" not in shown and "\\frac" not in shown, f"{href}: TeX left untypeset"
        for link in page.links:
            if link.endswith(".html") and not re.match(r"^[a-z]+:", link):
                assert (html_dir / link).exists(), f"{href}: broken link {link}"
    return index_dom


EXERCISE_CELLS = [
    ("markdown", "### Exercise 1: Predict, then check", ["exercise"]),
    ("code", "print('the answer is', 6 * 7)", ["solution"]),
    ("markdown", "**Solution.** Because six sevens.", ["solution"]),
    ("markdown", "## Key points\n\n- after the solution", []),
]
MATHS_MARKDOWN = (r"# Maths" "\n\nA rate $r = k/n$ and a ratio:\n\n"
                  r"$$\text{RRR} = \frac{P(\text{Self}) / P(\text{GP})}{P(\text{Self}) / P(\text{GP})}$$"
                  "\n\nA price in `$5` code is not maths.")
# Writes the rendered heights of a text line and of the fraction into the DOM, for the test to read.
MEASURE_SCRIPT = """<script>
document.body.dataset.line = document.querySelector('p').getBoundingClientRect().height /
  Math.max(1, document.querySelector('p').getClientRects().length);
document.body.dataset.fraction = document.querySelector('mfrac').getBoundingClientRect().height;
</script>"""


def test_fixture_book_in_browser(tmp_path: Path, write_notebook, chromium: str, serve) -> None:
    from nbclient import NotebookClient

    executed: dict[str, Path] = {}
    for stem, heading, code in [
        ("00_first", "First & foremost", "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()"),
        ("01_second", "Second page", "print('no figure here')"),
        ("02_third", "Third page", "import matplotlib.pyplot as plt\nfor k in range(2):\n"
                                   "    plt.figure(); plt.bar(['a', 'b'], [k, 2]); plt.show()"),
    ]:
        cells = [("markdown", f"# {heading}\n\nAbout {stem}. More text.", []), ("code", code, [])]
        if stem == "01_second":
            cells = [cells[0], ("code", "secret_parameter = 5000", ["parameters"]), cells[1], *EXERCISE_CELLS]
        path = write_notebook(tmp_path / "src" / f"{stem}.ipynb", cells)
        nb = nbformat.read(path, as_version=4)
        NotebookClient(nb, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(tmp_path)}}).execute()
        nbformat.write(nb, path)
        executed[stem] = path
    assert book.count_image_outputs(nbformat.read(executed["02_third"], as_version=4)) == 2

    html_dir = tmp_path / "html"
    book.build_book(list(executed.values()), html_dir, {"n_referrals": 5000})
    maths = write_notebook(tmp_path / "src" / "maths.ipynb", [("markdown", MATHS_MARKDOWN, [])])
    page = book.render_page(nbformat.read(maths, as_version=4), book.Page(maths, "maths.html", "Maths", "", 0),
                            None, None)
    (html_dir / "maths.html").write_text(page.replace("</body>", MEASURE_SCRIPT + "</body>"), encoding="utf-8")
    base = serve(html_dir)
    index_dom = check_book(base, html_dir, executed, chromium)
    assert "About 00_first." in index_dom  # summary: first sentence after the heading

    # Maths is typeset with no network: MathML, and the fraction is drawn stacked (taller than a text line).
    maths_dom = book.dump_dom(base + "maths.html", chromium)
    shown = visible_text(maths_dom)
    assert maths_dom.count("<math") == 2 and "$" not in shown and "\\frac" not in shown
    heights = dict(re.findall(r'data-(line|fraction)="([0-9.]+)"', maths_dom))
    assert float(heights["fraction"]) > 1.5 * float(heights["line"]), heights

    # The parameters cell is left out; the exercise is boxed; its solution cells are folded, closed.
    second = book.dump_dom(base + "01_second.html", chromium)
    assert "secret_parameter" not in second
    assert re.search(r'class="jp-Cell iapt-exercise [^"]*"[^>]*>.*?Exercise 1: Predict, then check', second, re.S)
    folded = re.findall(r"<details class=\"iapt-solution\"( open)?>(.*?)</details>", second, re.S)
    assert len(folded) == 1 and folded[0][0] == "", "one closed fold for the run of two solution cells"
    assert "the answer is 42" in folded[0][1] and "six sevens" in folded[0][1] and "Key points" not in folded[0][1]
    assert book.SOLUTION_SUMMARY in folded[0][1]

    # prev/next chain
    middle = facts(book.dump_dom(base + "01_second.html", chromium))
    assert "00_first.html" in middle.links and "02_third.html" in middle.links and "index.html" in middle.links

    # The code toggle's JavaScript: code shown by default; one toggle hides it and relabels the button.
    shown = book.dump_dom(base + "00_first.html", chromium)
    assert re.search(r'<body[^>]*class="[^"]*jp-Notebook', shown) and "iapt-hide-code" not in _body_class(shown)
    page = (html_dir / "00_first.html").read_text(encoding="utf-8")
    (html_dir / "toggled.html").write_text(page.replace("</body>", "<script>iaptToggleCode()</script></body>"),
                                           encoding="utf-8")
    toggled = book.dump_dom(base + "toggled.html", chromium)
    assert "iapt-hide-code" in _body_class(toggled)
    assert re.search(r'id="iapt-code-toggle"[^>]*>Show code<', toggled)


def _body_class(dom: str) -> str:
    match = re.search(r"<body[^>]*class=\"([^\"]*)\"", dom)
    return match.group(1) if match else ""


def test_real_book_in_browser(small_run, chromium: str, serve) -> None:
    assert small_run.result.returncode == 0, small_run.result.stderr
    html_dir = small_run.out / "html"
    executed = {p.stem: p for p in sorted((small_run.out / "notebooks").glob("*.ipynb"))}
    assert executed, "the small run executed no notebook"
    base = serve(html_dir)
    check_book(base, html_dir, executed, chromium)

    screenshot = PROJECT_ROOT / "outputs" / "book_index.png"
    book.screenshot(base + "index.html", screenshot, chromium, window_size=(1280, 1600))
    assert screenshot.stat().st_size > 10_000
    # A page with formulas, as a reader offline sees it (MathML, no MathJax): kept beside the index's.
    with_maths = max(sorted(html_dir.glob("*.html")), key=lambda p: p.read_text(encoding="utf-8").count("<math"))
    assert "<math" in with_maths.read_text(encoding="utf-8"), "no page of the book has a formula"
    book.screenshot(base + with_maths.name, PROJECT_ROOT / "outputs" / "book_maths_offline.png", chromium,
                    window_size=(1280, 2400))
    # helpers.run made its own screenshot of the same index (file URL) since Chromium is installed.
    assert (small_run.out / "book_index.png").exists()


def test_chromium_helpers_fail_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(book, "find_chromium", lambda: None)
    with pytest.raises(FileNotFoundError, match="make browser"):
        book.dump_dom(tmp_path / "index.html")
