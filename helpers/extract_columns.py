"""Which column of an extract holds which study field: the study's names, the later dataset versions' names,
or a local extract's own names through a small YAML mapping.

Why: real extracts name their fields differently (v2.x, local exports); the mapping is resolved before any row
is read, so a wrong or missing name fails at once with the names found and the names expected.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import yaml

from helpers.extract_checks import REQUIRED_COLUMNS, ExtractError

#: Field names of later dataset versions (IAPT v2.x / NHS Talking Therapies) recognised without a mapping.
DEFAULT_ALIASES: dict[str, str] = {
    "SourceOfReferralMH": "SourceOfReferralIAPT",
    "EthnicCategory": "Validated_EthnicCategory",
}



def read_column_mapping(path: str | Path) -> dict[str, str]:
    """A YAML mapping ``{study field: column in your extract}`` (optionally under a ``columns:`` key).

    Fails before any work, naming the key or value that is wrong and what would be valid.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"No column mapping file at {str(p)!r}.")
    data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    if isinstance(data, dict) and set(data) == {"columns"}:
        data = data["columns"]
    return validate_column_mapping(data, source=p.name)


def validate_column_mapping(mapping: Any, source: str = "columns") -> dict[str, str]:
    """Check a ``{study field: extract column}`` mapping: keys must be study fields, values non-blank text."""
    if not isinstance(mapping, Mapping):
        raise ExtractError(f"{source}: a column mapping must be a mapping of study field -> extract column, "
                           f"got {type(mapping).__name__}.")
    out = {}
    for k, v in mapping.items():
        if k not in REQUIRED_COLUMNS:
            raise ExtractError(f"{source}: {k!r} is not a study field; valid keys: {', '.join(REQUIRED_COLUMNS)}.")
        if not isinstance(v, str) or not v.strip():
            raise ExtractError(f"{source}: the column for {k!r} must be a non-blank column name, got {v!r}.")
        out[k] = v
    return out


def _clean_name(name: Any) -> str:
    return str(name).replace("\ufeff", "").strip()


def resolve_columns(found: list[str], mapping: Mapping[str, str] | None = None) -> tuple[dict[str, str], list[str]]:
    """Study field -> column of the source, and the renames to report.

    Order: an explicit mapping, the study's own name, a known alias (:data:`DEFAULT_ALIASES`), then the same
    names ignoring case and surrounding spaces. Raises :class:`ExtractError` listing what is missing.
    """
    mapping = dict(mapping or {})
    clean = {_clean_name(c): c for c in found}
    lower = {k.lower(): v for k, v in clean.items()}
    dup = sorted({c for c in clean if list(map(_clean_name, found)).count(c) > 1})
    if dup:
        raise ExtractError(f"Column(s) {', '.join(map(repr, dup))} appear more than once in the extract.")
    chosen: dict[str, str] = {}
    renames: list[str] = []
    for col in REQUIRED_COLUMNS:
        if col in mapping:
            want = mapping[col]
            if want not in clean:
                raise ExtractError(f"The column mapping says {col!r} is in column {want!r}, which the extract does "
                                   f"not have. Found: {', '.join(clean)}.")
            chosen[col] = clean[want]
            renames.append(f"{want} -> {col} (column mapping)")
            continue
        if col in clean:
            chosen[col] = clean[col]
            continue
        alias = next((a for a, c in DEFAULT_ALIASES.items() if c == col and a in clean), None)
        if alias:
            chosen[col] = clean[alias]
            renames.append(f"{alias} -> {col} (later dataset version)")
            continue
        names = [col] + [a for a, c in DEFAULT_ALIASES.items() if c == col]
        hit = next((lower[n.lower()] for n in names if n.lower() in lower), None)
        if hit is not None:
            chosen[col] = hit
            renames.append(f"{_clean_name(hit)} -> {col} (case or spaces differ)")
    missing = [c for c in REQUIRED_COLUMNS if c not in chosen]
    if missing:
        shown = [str(c) for c in clean]
        hint = ""
        if len(shown) == 1 and any(sep in shown[0] for sep in (";", "\t", "|")):
            hint = " The header has one column containing ';', tab or '|': is the file comma-separated?"
        raise ExtractError(
            f"The extract lacks {len(missing)} required column(s): {', '.join(missing)}. "
            f"Expected columns (NHS England IAPT analysis code names): {', '.join(REQUIRED_COLUMNS)} "
            f"(also recognised: {', '.join(DEFAULT_ALIASES)}; any other name through a column mapping, "
            f"--columns MAPPING.yaml). Found: {', '.join(shown) if shown else '(none)'}.{hint}")
    return chosen, renames
