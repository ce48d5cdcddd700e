"""helpers.parallel.schedule with stand-in jobs: dependencies, the first failure in order, interrupts."""

from __future__ import annotations

import nbformat
import pytest

from helpers import parallel as P


class FakeJob:
    """Finishes after ``polls`` polls with ``status``; records when it started and whether it was stopped."""

    def __init__(self, name: str, log: list, polls: int, status: str = "ok", explode: bool = False):
        self.name, self.log, self.polls, self.status, self.explode = name, log, polls, status, explode
        self.stopped = False
        log.append(("start", name))

    def poll(self):
        if self.explode:
            raise KeyboardInterrupt
        self.polls -= 1
        if self.polls > 0:
            return None
        self.log.append(("end", self.name))
        return P.Outcome(self.name, self.status, 0.0, None if self.status == "ok" else {"type": "E"})

    def stop(self):
        self.stopped = True
        self.log.append(("stop", self.name))


def run(spec: dict, jobs: int = 2, **kwargs):
    log, discarded, finished = [], [], []
    made = {}

    def launch(name):
        made[name] = FakeJob(name, log, **spec[name])
        return made[name]

    outcomes = P.schedule(list(spec), launch, jobs, poll_seconds=0, on_discard=discarded.append,
                          on_finish=finished.append, **kwargs)
    return outcomes, log, discarded, made, finished


def test_every_notebook_runs_and_outcomes_come_in_the_sets_order():
    spec = {"00_a": {"polls": 5}, "01_b": {"polls": 1}, "02_c": {"polls": 1}}
    outcomes, log, discarded, _, _ = run(spec, first=())
    assert [o.name for o in outcomes] == ["00_a", "01_b", "02_c"]
    assert log[:2] == [("start", "00_a"), ("start", "01_b")]  # two at a time
    assert discarded == []


def test_the_longest_notebook_starts_first():
    spec = {"00_a": {"polls": 1}, "01_b": {"polls": 1}, "09_long": {"polls": 1}}
    _, log, _, _, _ = run(spec, jobs=1, first=("09_long",))
    assert [n for what, n in log if what == "start"] == ["09_long", "00_a", "01_b"]


def test_a_notebook_that_reads_anothers_output_waits_for_it():
    spec = {"00_writes": {"polls": 4}, "01_other": {"polls": 1}, "02_reads": {"polls": 1}}
    _, log, _, _, _ = run(spec, after={"02_reads": ("00_writes",)}, first=())
    assert log.index(("start", "02_reads")) > log.index(("end", "00_writes"))
    assert log.index(("start", "02_reads")) > log.index(("start", "01_other"))


def test_a_dependency_must_come_earlier_in_the_set():
    with pytest.raises(ValueError, match="00_a is set to read the output of 01_b"):
        run({"00_a": {"polls": 1}, "01_b": {"polls": 1}}, after={"00_a": ("01_b",)})


def test_the_first_failure_in_order_ends_the_run_as_in_sequence():
    """01 fails while 02, started after the quick 00, has finished: 02 is discarded, not kept."""
    spec = {"00_fine": {"polls": 1}, "01_broken": {"polls": 3, "status": "failed"}, "02_never": {"polls": 1},
            "03_later": {"polls": 1}}
    outcomes, log, discarded, _, _ = run(spec, first=())
    assert [(o.name, o.status) for o in outcomes] == [("00_fine", "ok"), ("01_broken", "failed")]
    assert "02_never" in discarded
    assert sorted(discarded) == ["02_never", "03_later"]


def test_notebooks_before_a_failure_still_run():
    spec = {"00_a": {"polls": 1}, "01_b": {"polls": 1}, "02_fails_first": {"polls": 1, "status": "failed"}}
    outcomes, _, discarded, _, _ = run(spec, jobs=1, first=("02_fails_first",))
    assert [(o.name, o.status) for o in outcomes] == [("00_a", "ok"), ("01_b", "ok"), ("02_fails_first", "failed")]
    assert discarded == []


def test_a_running_later_notebook_is_stopped_when_an_earlier_one_fails():
    spec = {"00_fails": {"polls": 2, "status": "failed"}, "01_slow": {"polls": 50}}
    outcomes, _, discarded, made, _ = run(spec, first=())
    assert [o.name for o in outcomes] == ["00_fails"]
    assert made["01_slow"].stopped and discarded == ["01_slow"]


def test_an_interrupt_stops_every_running_notebook_and_reports_it():
    spec = {"00_a": {"polls": 50}, "01_b": {"polls": 50, "explode": True}}
    log, finished = [], []
    made = {}

    def launch(name):
        made[name] = FakeJob(name, log, **spec[name])
        return made[name]

    with pytest.raises(KeyboardInterrupt):
        P.schedule(list(spec), launch, 2, poll_seconds=0, first=(), on_finish=finished.append)
    assert all(job.stopped for job in made.values())
    assert sorted((o.name, o.status) for o in finished) == [("00_a", "interrupted"), ("01_b", "interrupted")]


def test_book_pages_rendered_side_by_side_are_the_same_pages(tmp_path, write_notebook):
    from helpers import book

    nbs = [write_notebook(tmp_path / "nbs" / f"0{i}_page.ipynb",
                          [("markdown", f"# Page {i}\n\nSome text, $x^{i}$.", []), ("code", f"print({i})", [])])
           for i in range(3)]
    one = book.build_book(nbs, tmp_path / "one", {"seed": 1}, jobs=1).parent
    two = book.build_book(nbs, tmp_path / "two", {"seed": 1}, jobs=2).parent
    names = sorted(p.name for p in one.iterdir())
    assert names == sorted(p.name for p in two.iterdir()) and len(names) == 4
    pages = [n for n in names if n != "index.html"]  # the index says when it was built
    assert all((one / n).read_bytes() == (two / n).read_bytes() for n in pages)


def test_pages_rendered_early_are_the_pages_the_book_renders(tmp_path, write_notebook):
    """A run renders each page as its notebook finishes; the book is byte for byte the one built at the end,
    and a page rendered with other neighbours than the book's (here: a source whose title changed) is redone."""
    from helpers import book

    sources = [write_notebook(tmp_path / "src" / f"0{i}_page.ipynb",
                              [("markdown", f"# Page {i}\n\nSome text, $x^{i}$.", []), ("code", f"print({i})", [])])
               for i in range(3)]
    executed = [write_notebook(tmp_path / "run" / p.name,
                               [("markdown", f"# {'Renamed' if i == 2 else 'Page'} {i}\n\nSome text, $x^{i}$.", []),
                                ("code", f"print({i})", [])])
                for i, p in enumerate(sources)]
    early = book.EarlyPages(sources)
    try:
        for path in executed:
            early.add(path)
        work = []
        pages = [book.page_of(p, nbformat.read(p, as_version=4)) for p in executed]
        for i, path in enumerate(executed):
            work.append((nbformat.read(path, as_version=4), pages[i], pages[i - 1] if i else None,
                         pages[i + 1] if i + 1 < len(pages) else None, book.BOOK_TITLE))
        assert early.take(work[0]) is not None and early.take(work[2]) is not None
        assert early.take(work[1]) is None  # its next page is titled "Renamed 2" in the run, "Page 2" in the source
        with_early = book.build_book(executed, tmp_path / "early", {"seed": 1}, early=early).parent
    finally:
        early.close()
    plain = book.build_book(executed, tmp_path / "plain", {"seed": 1}).parent
    pages_html = sorted(p.name for p in plain.iterdir() if p.name != "index.html")
    assert len(pages_html) == 3
    assert all((plain / n).read_bytes() == (with_early / n).read_bytes() for n in pages_html)
