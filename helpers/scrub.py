"""No machine path in any output of a run: the extract by its file name, OUT by ".", other folders relative.

``helpers.run`` applies a :class:`Scrubber` to everything it writes (run.json, the executed notebooks, the
book's parameters), because papermill injects the absolute parameters and records its input and output
paths, and messages quote them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

from helpers import params as params_mod
from helpers.study import PROJECT_ROOT


@dataclass
class Scrubber:
    """Replace machine paths by what a reader may see: the extract by its file name, OUT by ".", other
    folders relative to OUT where they lie inside it, the project folder by "<project>".

    Applied to everything a run writes (run.json, executed notebooks, the book's parameters), because
    papermill injects the absolute parameters and records its input and output paths, and messages quote
    them. Longest paths are replaced first, so a file inside OUT is not half-replaced by OUT itself.
    """

    replacements: list[tuple[str, str]]

    @classmethod
    def for_run(cls, parameters: dict[str, Any], out_dir: Path) -> "Scrubber":
        pairs: dict[str, str] = {}
        out = Path(out_dir).resolve()
        for name in ("data_path", "targets_path", "margin"):
            value = parameters.get(name)
            if isinstance(value, str) and value and value not in params_mod.MARGIN_KEYWORDS:
                path = Path(value)
                pairs[str(path)] = path.name
                pairs[str(path.resolve())] = path.name
                parent = str(path.parent.resolve())
                if len(Path(parent).parts) > 1:  # never "/" itself
                    pairs[parent] = "<folder of " + path.name + ">"
        pairs[str(out)] = "."
        pairs[str(Path(out_dir))] = "."
        pairs[str(PROJECT_ROOT)] = "<project>"
        pairs[str(PROJECT_ROOT.resolve())] = "<project>"
        home = str(Path.home())
        if home not in ("/", ""):
            pairs[home] = "~"
        ordered = sorted(((k, v) for k, v in pairs.items() if k and k != "."), key=lambda kv: -len(kv[0]))
        return cls(ordered)

    def text(self, value: str) -> str:
        for old, new in self.replacements:
            if old in value:
                value = value.replace(old + os.sep, "" if new == "." else new + "/")
                value = value.replace(old, new)
        return value

    def __call__(self, obj: Any) -> Any:
        """A scrubbed copy of a JSON-like value (str, dict, list, tuple, other values unchanged)."""
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, dict):
            return {self(k): self(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [self(v) for v in obj]
        return obj

    def notebook(self, path: Path) -> None:
        """Scrub an executed notebook file in place (sources, outputs, metadata)."""
        nb = nbformat.read(path, as_version=4)
        nbformat.write(_scrub_node(nb, self), path)


def _scrub_node(node: Any, scrub: Scrubber) -> Any:
    """Scrub an nbformat node (a dict subclass) in place, keeping its type."""
    if isinstance(node, dict):
        for key in list(node):
            node[key] = _scrub_node(node[key], scrub)
        return node
    if isinstance(node, list):
        return [_scrub_node(v, scrub) for v in node]
    if isinstance(node, str):
        return scrub.text(node)
    return node
