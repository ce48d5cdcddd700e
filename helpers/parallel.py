"""Run notebooks several at a time, each in its own worker process: the parallel route of ``helpers.run``.

Which notebooks depend on which: a notebook must wait for another only when it reads a file the other writes.
None does today: every notebook reads its inputs through ``helpers.pipeline`` (the committed or generated
cohort, the targets file, the published tables) and writes only its own ``NN_``-prefixed tables and figures;
02 reads back only the file it wrote itself. So :data:`AFTER` is empty and every notebook may run beside any
other. What notebooks share is *results* (the analysis data, the fits), and those come from the run's cache
(``helpers.cache``): when two notebooks need the same result at once, one computes it and the other waits
for that entry only. The book and the result tables come after every notebook, as before.

Failures read as in the sequential route: the run stops at the first notebook, in the set's order, that
failed. Notebooks before it still run (the sequential route would have run them); any after it are stopped,
or, if they already finished, discarded (their executed copy removed), so a failed run records the same
notebooks whichever route ran it.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol, Sequence

#: notebook stem -> stems of notebooks whose output files it reads (so it starts after they succeeded).
AFTER: dict[str, tuple[str, ...]] = {}
#: The longest notebooks start first, so the short ones fill the other cores around them (longest first
#: keeps the last core from idling while one long notebook finishes alone). 07 is among them for a second
#: reason: 08 draws the same five random-mode cohorts (planted coverage) and finds them in the run's cache;
#: started beside 07 it would wait on each cohort while 07 computes it, its core idle.
FIRST: tuple[str, ...] = ("12_simulation_study", "11_weighted_imputation", "07_planted_versus_estimated",
                          "10_missing_ethnicity")
POLL_SECONDS = 0.05


@dataclass
class Outcome:
    """How one notebook ended: ``ok``, ``failed`` (with ``failure``, as helpers.run describes it) or
    ``interrupted``."""

    name: str
    status: str
    seconds: float
    failure: dict[str, Any] | None = None


class Job(Protocol):
    """A started notebook: ``poll()`` is None while it runs, then its Outcome; ``stop()`` ends it."""

    def poll(self) -> Outcome | None: ...

    def stop(self) -> None: ...


def default_jobs() -> int:
    """Worker processes by default: the cores this process may use (at most 4: kernels take memory)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


def start_order(names: Sequence[str], first: Sequence[str] = FIRST) -> list[str]:
    """The order notebooks are started in: those named in ``first`` (if selected), then the set's order."""
    head = [n for n in first if n in names]
    return head + [n for n in names if n not in head]


def check_dependencies(names: Sequence[str], after: Mapping[str, Sequence[str]]) -> None:
    """A notebook may only wait for notebooks before it in the set (so the sequential order stays valid)."""
    position = {n: i for i, n in enumerate(names)}
    for name, needs in after.items():
        for need in needs:
            if name in position and need in position and position[need] >= position[name]:
                raise ValueError(f"notebook {name} is set to read the output of {need}, which comes after it")


def schedule(
    names: Sequence[str],
    launch: Callable[[str], Job],
    jobs: int,
    *,
    after: Mapping[str, Sequence[str]] = AFTER,
    first: Sequence[str] = FIRST,
    on_start: Callable[[str], None] = lambda name: None,
    on_finish: Callable[[Outcome], None] = lambda outcome: None,
    on_discard: Callable[[str], None] = lambda name: None,
    poll_seconds: float = POLL_SECONDS,
) -> list[Outcome]:
    """Run ``names`` (in the set's order) on ``jobs`` workers; return the kept outcomes in the set's order.

    ``after``: which notebooks wait for which (only those selected count). The first failure in the set's
    order ends the run: later notebooks are stopped or discarded (``on_discard``), earlier ones still run.
    On an interrupt (KeyboardInterrupt, or any BaseException raised while waiting) every running notebook
    is stopped and reported to ``on_finish`` as ``interrupted`` before the exception propagates.
    """
    check_dependencies(names, after)
    position = {n: i for i, n in enumerate(names)}
    queue = start_order(names, first)
    running: dict[str, tuple[Job, float]] = {}
    done: dict[str, Outcome] = {}
    cutoff = len(names)  # position of the first failure so far

    def ready(name: str) -> bool:
        return all(done.get(d) is not None and done[d].status == "ok" for d in after.get(name, ()) if d in position)

    try:
        while queue or running:
            queue = [n for n in queue if position[n] < cutoff]
            while len(running) < max(1, jobs):
                startable = [n for n in queue if ready(n)]
                if not startable:
                    break
                name = startable[0]
                queue.remove(name)
                running[name] = (launch(name), time.perf_counter())
                on_start(name)
            if not running:
                break  # what is left waits on a notebook that will not run
            time.sleep(poll_seconds)
            for name in sorted(running, key=position.get):
                if name not in running:
                    continue
                outcome = running[name][0].poll()
                if outcome is None:
                    continue
                del running[name]
                if position[name] > cutoff:
                    on_discard(name)
                    continue
                done[name] = outcome
                on_finish(outcome)
                if outcome.status != "ok" and position[name] < cutoff:
                    cutoff = position[name]
                    for later in [n for n in running if position[n] > cutoff]:
                        running.pop(later)[0].stop()
                        on_discard(later)
                    for later in [n for n in done if position[n] > cutoff]:
                        del done[later]
                        on_discard(later)
    except BaseException:
        for name in sorted(running, key=position.get):
            job, started = running.pop(name)
            job.stop()
            on_finish(Outcome(name, "interrupted", round(time.perf_counter() - started, 2)))
        raise
    return [done[n] for n in names if n in done]
