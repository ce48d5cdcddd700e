"""Check a run's publish folder: ``python -m helpers.check_outputs DIR`` (exit 1 on any finding).

Everything in DIR except the ``secure/`` folder is meant to leave the secure environment, so it must pass
the disclosure rule of ``helpers.tables`` (counts 1-``threshold`` suppressed, every other count a multiple
of ``base``) and name no machine path. ``helpers.run`` calls :func:`check_folder` at the end of every
real-extract run.

What is a count (the rules, kept narrow so years, ages, codes, percentages and ratios are never flagged):

* **count columns** of CSV files and of HTML tables (notebook outputs, book pages): a column whose header
  (any header row, after spreading ``colspan``) is a count name: ``n``, ``N``, ``count``, ``total``,
  ``referred``, ``assessed``, ``treated``, ``excluded``, ``n_*``/``*_n`` such as ``n_rows``,
  ``n_events`` (not ``residents``: census counts are published statistics). Cells that are whole numbers
  (``1,234``; ``1234.0``) are counts; other cells (``*``, blanks, decimals, text) are not. Column headers
  that are percentages or rates (``pct_*``, ``%``, ``*_per_1000*``, ``rate``) are never count columns.
* **"n (%)" cells**, anywhere in text: a whole number directly followed by one parenthesised number, e.g.
  ``2 (3.7)`` or ``1,234 (12.0%)``: the whole number is a count. ``0.77 (0.72-0.81)`` is not (a decimal, and
  a range).
* **"n=" text**: ``n=12``, ``n = 1,234``, ``N: 5``.
* **counted nouns**: a whole number followed by ``referrals``, ``rows``, ``people``, ``records``,
  ``patients`` or ``lines`` (``5 rows``), unless preceded by "per" (``per 1,000 referrals`` is a rate base).

Not checked: a code cell tagged ``not-extract-counts`` (in the notebook, and its ``celltag_`` block on a
book page), for outputs that by construction show no count of the extract: the paper's printed Table 4,
the targets file, small made-up examples. Counts of replicates or imputations (``n_sim``, ``n_failed``) are
not counts of people.

Where: CSV files; code-cell outputs of ``.ipynb`` files (stream text, ``text/plain``, ``text/html``; the
code itself and markdown prose are not data); the output areas of ``.html`` book pages. Images (``.png``)
cannot be read: the plotting helpers take disclosed tables, which is where figure labels are protected.

A finding is a count 1-``threshold`` ("small count"), or a count that is not a multiple of ``base``
("unrounded count"); 0 and suppressed cells (``*``, blank) pass. Separately every text file (``.csv``,
``.ipynb``, ``.html``, ``.json``, ``.txt``, ``.md``) is searched for machine paths: the ``forbidden``
strings given (``helpers.run`` passes the run's real folders) and any ``/home/``, ``/root/``, ``/tmp/``,
``/work/``, ``/Users/`` or ``C:\\`` path.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import sys
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Iterable, Iterator, Sequence

SECURE_DIRNAME = "secure"
TEXT_SUFFIXES = {".csv", ".ipynb", ".html", ".json", ".txt", ".md"}

COUNT_NAME = re.compile(
    r"^(n|count|counts|total|referred|assessed|treated|excluded|frequency"
    r"|n_[a-z_]+|[a-z_]+_n|n \(%[^)]*\)|n \(% of [a-z]+\))$",
    re.IGNORECASE,
)
# Counts of simulation replicates, imputations or iterations, not of people.
NOT_PEOPLE = {"n_sim", "n_failed", "n_imputations", "n_iter", "m"}
EXEMPT_TAG = "not-extract-counts"
NOT_COUNT_NAME = re.compile(r"(pct|%|per_?1000|per 1,000|rate|share|ratio|estimate|ci_|_ci|se$|p_value)",
                            re.IGNORECASE)
WHOLE = re.compile(r"^\s*(\d{1,3}(?:,\d{3})+|\d+)(?:\.0+)?\s*$")
_NUM = r"(?<![\d.,\w-])(\d{1,3}(?:,\d{3})+|\d+)(?![\d.,]*\d)(?!\.\d)(?![-/:])"
N_PERCENT = re.compile(_NUM + r"\s+\(\s*\d+(?:\.\d+)?\s*%?\s*\)")
N_EQUALS = re.compile(r"(?<![\w])[nN]\s*[=:]\s*" + _NUM)
COUNTED_NOUN = re.compile(r"(?<!per )(?<!per\xa0)" + _NUM + r"\s+(?:referrals?|rows?|people|records?|patients|lines)\b")
MACHINE_PATH = re.compile(r"(?<![\w.])(/home/|/root/|/tmp/|/work/|/Users/|[A-Za-z]:\\\\)")


@dataclass(frozen=True)
class Finding:
    """One problem: the file (relative to the folder checked), where in it, the value, what is wrong."""

    file: str
    where: str
    value: str
    problem: str

    def __str__(self) -> str:
        return f"{self.file}: {self.where}: {self.value!r}: {self.problem}"


def _count_problem(text: str, threshold: int, base: int) -> str | None:
    value = int(text.replace(",", ""))
    if 1 <= value <= threshold:
        return f"small count (1-{threshold}): suppress it"
    if base > 1 and value % base:
        return f"unrounded count (not a multiple of {base})"
    return None


def is_count_column(names: Iterable[str]) -> bool:
    """A column is a count column when one of its header labels is a count name and none is a rate."""
    labels = [str(n).strip() for n in names if str(n).strip()]
    if any(NOT_COUNT_NAME.search(n) or n.lower() in NOT_PEOPLE for n in labels):
        return False
    return any(COUNT_NAME.match(n) for n in labels)


def check_text(text: str, threshold: int = 7, base: int = 5) -> list[tuple[str, str]]:
    """(value, problem) for every count in free text that breaks the rule (n (%) cells, n=, counted nouns)."""
    found = []
    for pattern, kind in ((N_PERCENT, "n (%) cell"), (N_EQUALS, "n= text"), (COUNTED_NOUN, "counted noun")):
        for match in pattern.finditer(text):
            problem = _count_problem(match.group(1), threshold, base)
            if problem:
                found.append((match.group(0).strip(), f"{kind}: {problem}"))
    return found


def check_grid(header: Sequence[Sequence[str]], rows: Sequence[Sequence[str]], threshold: int = 7,
               base: int = 5) -> list[tuple[str, str, str]]:
    """(cell position, value, problem) for a table: count columns by header, n (%) text in every cell."""
    width = max([len(r) for r in [*header, *rows]] or [0])
    count_cols = {j for j in range(width) if is_count_column(h[j] for h in header if j < len(h))}
    found = []
    for i, row in enumerate(rows):
        for j, cell in enumerate(row):
            where = f"row {i + 1}, column {j + 1}" + (f" ({'/'.join(h[j] for h in header if j < len(h) and h[j])})"
                                                     if header else "")
            match = WHOLE.match(cell)
            if j in count_cols and match:
                problem = _count_problem(match.group(1), threshold, base)
                if problem:
                    found.append((where, cell, problem))
                continue
            for value, problem in check_text(cell, threshold, base):
                found.append((where, value, problem))
    return found


def _csv_grid(text: str) -> tuple[list[list[str]], list[list[str]]]:
    """Split a CSV into header rows and data rows: header rows run until the first row with a number."""
    rows = list(csv.reader(io.StringIO(text)))
    n_header = 0
    for row in rows[:4]:
        cells = row[1:] if len(row) > 1 else row  # a first column of labels may hold years or codes
        if any(WHOLE.match(c) or re.match(r"^\s*-?\d+\.\d+\s*$", c) for c in cells if c):
            break
        n_header += 1
    n_header = max(1, min(n_header, len(rows)))
    return rows[:n_header], rows[n_header:]


class _Tables(HTMLParser):
    """Collect <table>s (header rows with colspan spread, body rows) and free text of output areas."""

    def __init__(self, only_outputs: bool):
        super().__init__(convert_charrefs=True)
        self.only_outputs = only_outputs
        self.depth = 0  # nesting depth inside an output area (book pages); 0 = outside
        self.exempt = 0  # nesting depth inside a cell tagged EXEMPT_TAG; 0 = outside
        self.tables: list[tuple[list[list[str]], list[list[str]]]] = []
        self.texts: list[str] = []
        self._stack: list[dict] = []
        self._cell: list[str] | None = None
        self._span = 1
        self._in_head = False
        self._skip = 0

    @property
    def active(self) -> bool:
        return (not self.only_outputs or self.depth > 0) and not self.exempt

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if self.exempt:
            self.exempt += 1
        elif f"celltag_{EXEMPT_TAG}" in (a.get("class") or "").split():
            self.exempt = 1
        if self.only_outputs:
            if self.depth:
                self.depth += 1
            elif "jp-OutputArea-output" in (a.get("class") or "").split():
                self.depth = 1
        if tag in ("script", "style"):
            self._skip += 1
        if not self.active:
            return
        if tag == "table":
            self._stack.append({"header": [], "rows": [], "row": None, "row_is_head": False})
        elif self._stack and tag == "thead":
            self._in_head = True
        elif self._stack and tag == "tr":
            self._stack[-1]["row"] = []
            self._stack[-1]["row_is_head"] = self._in_head
        elif self._stack and tag in ("td", "th"):
            self._cell = []
            self._span = int(a.get("colspan") or 1) if str(a.get("colspan") or "1").isdigit() else 1

    def handle_endtag(self, tag):
        if self.exempt:
            self.exempt -= 1
        if self.only_outputs and self.depth:
            self.depth -= 1
        if tag in ("script", "style") and self._skip:
            self._skip -= 1
        if not self._stack:
            return
        t = self._stack[-1]
        if tag in ("td", "th") and self._cell is not None and t["row"] is not None:
            text = " ".join("".join(self._cell).split())
            t["row"].extend([text] * self._span)
            self._cell = None
        elif tag == "tr" and t["row"] is not None:
            (t["header"] if t["row_is_head"] else t["rows"]).append(t["row"])
            t["row"] = None
        elif tag == "thead":
            self._in_head = False
        elif tag == "table":
            self._stack.pop()
            self.tables.append((t["header"], t["rows"]))

    def handle_data(self, data):
        if self._skip or not self.active:
            return
        if self._cell is not None:
            self._cell.append(data)
        elif not self._stack:
            self.texts.append(data)


def check_html(html: str, threshold: int = 7, base: int = 5, only_outputs: bool = False) -> list[tuple[str, str, str]]:
    """(where, value, problem) in an HTML fragment or page; ``only_outputs`` limits a book page to its
    output areas (code and prose are not data)."""
    html = re.sub(r"data:image/[^\"')]+", "", html)  # base64 images can spell anything
    parser = _Tables(only_outputs)
    parser.feed(html)
    found = []
    for k, (header, rows) in enumerate(parser.tables, 1):
        for where, value, problem in check_grid(header, rows, threshold, base):
            found.append((f"table {k}, {where}", value, problem))
    for value, problem in check_text("\n".join(parser.texts), threshold, base):
        found.append(("text", value, problem))
    return found


def _notebook_findings(text: str, threshold: int, base: int) -> Iterator[tuple[str, str, str]]:
    nb = json.loads(text)
    for index, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code" or EXEMPT_TAG in cell.get("metadata", {}).get("tags", []):
            continue
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if output.get("output_type") == "stream":
                parts = [("stream", "".join(output.get("text", "")))]
            elif "text/html" in data:
                parts = [("html", "".join(data["text/html"]))]
            elif "text/plain" in data:
                parts = [("text", "".join(data["text/plain"]))]
            elif output.get("output_type") == "error":
                parts = [("error", output.get("evalue", ""))]
            else:
                parts = []
            for kind, content in parts:
                if kind == "html":
                    for where, value, problem in check_html(content, threshold, base):
                        yield f"cell {index}, {where}", value, problem
                else:
                    for value, problem in check_text(content, threshold, base):
                        yield f"cell {index}, {kind} output", value, problem


def check_file(path: Path, root: Path, threshold: int = 7, base: int = 5,
               forbidden: Sequence[str] = ()) -> list[Finding]:
    """Findings for one file (counts in CSV / notebook / HTML; machine paths in any text file)."""
    rel = str(path.relative_to(root))
    suffix = path.suffix.lower()
    if suffix not in TEXT_SUFFIXES:
        return []
    text = path.read_text(encoding="utf-8", errors="replace")
    found: list[Finding] = []
    if suffix == ".csv":
        header, rows = _csv_grid(text)
        found += [Finding(rel, where, value, problem) for where, value, problem in
                  check_grid(header, rows, threshold, base)]
    elif suffix == ".ipynb":
        found += [Finding(rel, w, v, p) for w, v, p in _notebook_findings(text, threshold, base)]
    elif suffix == ".html":
        found += [Finding(rel, w, v, p) for w, v, p in check_html(text, threshold, base, only_outputs=True)]
    searchable = re.sub(r"data:image/[^\"')]+", "", text)
    if suffix == ".ipynb":
        searchable = re.sub(r'"image/(png|jpeg|gif)": "[^"]*"', "", searchable)
    for old in forbidden:
        if len(old) > 1 and old in searchable:
            found.append(Finding(rel, "text", old, "machine path"))
    for match in sorted(set(MACHINE_PATH.findall(searchable))):
        found.append(Finding(rel, "text", match, "machine path"))
    return found


def check_folder(folder: Path | str, threshold: int = 7, base: int = 5,
                 forbidden: Sequence[str] = ()) -> list[Finding]:
    """Every finding in ``folder`` outside its ``secure/`` sub-folder (hidden files skipped)."""
    root = Path(folder)
    found: list[Finding] = []
    for path in sorted(root.rglob("*")):
        parts = path.relative_to(root).parts
        if not path.is_file() or parts[0] == SECURE_DIRNAME or any(p.startswith(".") for p in parts):
            continue
        found += check_file(path, root, threshold, base, forbidden)
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.check_outputs",
                                     description="Fail on any count 1-7, unrounded count or machine path "
                                                 "outside DIR/secure/.")
    parser.add_argument("folder", type=Path, metavar="DIR")
    parser.add_argument("--threshold", type=int, default=7, help="counts 1..THRESHOLD must be suppressed (7)")
    parser.add_argument("--base", type=int, default=5, help="counts must be multiples of BASE (5)")
    parser.add_argument("--forbid", action="append", default=[], metavar="PATH", help="a path that must not appear")
    args = parser.parse_args(argv)
    if not args.folder.is_dir():
        print(f"error: {args.folder} is not a folder", file=sys.stderr)
        return 2
    found = check_folder(args.folder, args.threshold, args.base, args.forbid)
    for f in found:
        print(f)
    n_files = len({f.file for f in found})
    print(f"{len(found)} finding(s) in {n_files} file(s)" if found else
          "no finding: no count 1-7, no unrounded count, no machine path outside secure/", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
