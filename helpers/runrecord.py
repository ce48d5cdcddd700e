"""What ``run.json`` records: the parameters, the notebooks and how each ended, the run's status, and the facts
of the machine (git revision, Python, package versions), written at the start (``running``) and at the end."""

from __future__ import annotations

import json
import platform
import re
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from helpers.scrub import Scrubber
from helpers.study import PROJECT_ROOT


@dataclass
class RunRecord:
    """What run.json records; written at the start (status running) and at the end."""

    parameters: dict[str, Any]
    out_dir: Path
    scrubber: Scrubber | None = None
    notebooks: list[dict[str, Any]] = field(default_factory=list)
    status: str = "running"
    error: dict[str, Any] | None = None
    started: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    finished: str | None = None
    tables: list[str] = field(default_factory=list)
    extract: dict[str, Any] | None = None
    disclosure_check: dict[str, Any] | None = None
    wall_seconds: float | None = None  # start to finish; notebooks side by side add up to more

    def write(self) -> Path:
        path = self.out_dir / "run.json"
        payload = {
            "status": self.status,
            "started": self.started,
            "finished": self.finished,
            "parameters": self.parameters,
            "notebooks": self.notebooks,
            "total_seconds": round(sum(n.get("seconds", 0.0) for n in self.notebooks), 2),
            "wall_seconds": self.wall_seconds,
            "error": self.error,
            "tables": self.tables,
            "extract": self.extract,
            "disclosure_check": self.disclosure_check,
            "git_revision": git_revision(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "packages": package_versions(),
            "command": [Path(sys.executable).name, "-m", "helpers.run", *sys.argv[1:]],
        }
        if self.scrubber is not None:
            payload = self.scrubber(payload)
        path.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
        return path


def git_revision(root: Path = PROJECT_ROOT) -> str:
    """The checked-out commit (with ``-dirty`` when the tree has changes), or "unknown"."""
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root, capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{rev}-dirty" if dirty else rev or "unknown"


def _requirement_names(root: Path = PROJECT_ROOT) -> list[str]:
    req = root / "requirements.txt"
    names: list[str] = []
    if req.exists():
        for line in req.read_text(encoding="utf-8").splitlines():
            line = line.split("#", 1)[0].strip()
            if line and not line.startswith("-"):
                names.append(re.split(r"[<>=!~;\[ ]", line, maxsplit=1)[0])
    return names


def package_versions() -> dict[str, str]:
    """Installed versions of the direct dependencies (requirements.txt) and of this project."""
    names = ["iapt-pathways", *_requirement_names()]
    out: dict[str, str] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def now() -> str:
    """The time now (UTC, seconds), as run.json records it."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
