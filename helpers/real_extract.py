"""What a run on a real extract (``data_path``) adds: the extract checked before any notebook starts, the
exact material kept in ``secure/`` (the flow, the check's report, the run's cache), and the publish folder
checked at the end (``helpers.check_outputs``: no count 1-7, no unrounded count, no machine path outside
``secure/``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from helpers import check_outputs, pipeline
from helpers.runcli import EXIT_BAD_EXTRACT
from helpers.runrecord import RunRecord, now
from helpers.scrub import Scrubber


def check_real_extract(parameters: dict[str, Any], out_dir: Path, record: RunRecord) -> int | None:
    """Check a real extract before any notebook starts; the exit code if the run must stop, else None."""
    check = pipeline.check_extract(parameters)
    print(check.text(), flush=True)
    written = pipeline.write_flow(check, parameters, out_dir / "tables", out_dir / pipeline.SECURE_DIRNAME)
    record.tables = [str(p.relative_to(out_dir)) for p in written]
    record.extract = {"file": check.source, "usable": check.ok}  # counts live in secure/flow.csv only
    if check.ok:
        return None
    secure = out_dir / pipeline.SECURE_DIRNAME
    secure.mkdir(parents=True, exist_ok=True)
    (secure / "extract_check.txt").write_text(check.text() + "\n", encoding="utf-8")  # exact counts: secure only
    record.status = "failed"
    record.error = {"step": "extract check",
                    "message": "the extract cannot be analysed; the report is in secure/extract_check.txt"}
    record.finished = now()
    record.write()
    print(f"error: the extract cannot be analysed: {check.problem}", file=sys.stderr)
    if written:
        print(f"The exact flow table is in {out_dir / pipeline.SECURE_DIRNAME / 'flow.csv'}.", file=sys.stderr)
    print("No notebook was run.", file=sys.stderr)
    return EXIT_BAD_EXTRACT


def check_publish_folder(out_dir: Path, parameters: dict[str, Any], scrubber: Scrubber) -> list[str]:
    """helpers.check_outputs over everything outside secure/: the findings, one line each."""
    findings = check_outputs.check_folder(out_dir, threshold=parameters["suppress_threshold"],
                                          base=parameters["rounding_base"],
                                          forbidden=[old for old, _ in scrubber.replacements])
    return [str(f) for f in findings]


def run_cache_folder(out_dir: Path, real: bool) -> Path:
    """Where a run keeps its cache: inside the secure folder for a real extract (the analysis frame holds
    exact rows), else a hidden folder of the output folder."""
    return out_dir / pipeline.SECURE_DIRNAME / "cache" if real else out_dir / ".cache"
