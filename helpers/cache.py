"""A run-level cache of shared results: each computed once per run, reused by every notebook and the tables.

``python -m helpers.run`` makes an empty cache folder inside the run's output folder (``OUT/.cache``, or
``OUT/secure/cache`` for a real extract, since the analysis frame holds exact rows), names it to every kernel
in the environment variable ``IAPT_CACHE_DIR``, and removes it when the run ends. ``helpers.pipeline`` asks
:func:`memo` for the analysis data, the complete-case, full-data and imputed (weighted MI, MAR MI) fits; with
no cache folder named (a notebook opened by hand in JupyterLab, a test) :func:`memo` simply computes.

Why this shape:
- An entry's key is a digest of everything the result is computed from: for the data, the data parameters
  (``params.GROUPS["data"]`` and the engine) and the bytes of the input files; for a fit, the validated
  parameters (less ``output_dir``, which changes no number) and the digest of the analysis frame and truth.
  Two notebooks asking for the same result share one entry; a notebook that asks with other data parameters
  (``load_study_data(p, n_referrals=...)``) gets its own data, one that asks with another margin the same
  data and its own fits.
- The cache lives for one run only, in a folder the run made and cleared: a code change between runs can never
  serve a stale result, and no pickle is loaded from a folder the run did not make.
- A per-entry lock (``fcntl.flock``): when two notebooks running in parallel need the same result, one
  computes it and the other waits for it, instead of both computing it.
- Warnings raised while computing are stored with the result and raised again on every use, so a notebook
  shows the same warnings whether it computed the result or found it.
- Pickle is exact: a result read back is the result computed (same values, dtypes, order), so the tables are
  byte for byte those of the uncached route (tests/test_cache.py).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import pickle
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

import pandas as pd

ENV = "IAPT_CACHE_DIR"
T = TypeVar("T")


def directory() -> Path | None:
    """The cache folder named by ``IAPT_CACHE_DIR``, or None (compute everything)."""
    value = os.environ.get(ENV, "").strip()
    return Path(value) if value else None


@contextlib.contextmanager
def enabled(path: Path | None) -> Iterator[None]:
    """Name ``path`` as the cache for this block (and for kernels started in it); None: no cache."""
    before = os.environ.get(ENV)
    if path is None:
        os.environ.pop(ENV, None)
    else:
        Path(path).mkdir(parents=True, exist_ok=True)
        os.environ[ENV] = str(path)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = before


def digest(*parts: Any) -> str:
    """A stable hex digest of JSON-like parts, bytes, files and folders (``Path``: a folder by the names and
    bytes of every file under it) and pandas objects."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, bytes):
            h.update(b"b"), h.update(part)
        elif isinstance(part, Path) and part.is_dir():  # a folder input (e.g. Parquet parts): every file in it
            h.update(b"d")
            for f in sorted(q for q in part.rglob("*") if q.is_file()):
                h.update(str(f.relative_to(part)).encode()), h.update(b"\0"), h.update(f.read_bytes()), h.update(b"\0")
        elif isinstance(part, Path):
            h.update(b"f"), h.update(part.read_bytes() if part.is_file() else b"<no file>")
        elif isinstance(part, (pd.DataFrame, pd.Series)):
            h.update(b"p")
            frame = isinstance(part, pd.DataFrame)
            h.update(repr(part.dtypes.to_dict() if frame else part.dtype).encode())
            h.update(repr(list(part.columns) if frame else part.name).encode())
            h.update(pd.util.hash_pandas_object(part, index=True).to_numpy().tobytes())
        elif part is None:
            h.update(b"n")
        else:
            h.update(b"j"), h.update(json.dumps(part, sort_keys=True, default=str).encode())
        h.update(b"\0")
    return h.hexdigest()


def _reraise(caught: list[tuple[type[Warning], str]]) -> None:
    for category, message in caught:
        warnings.warn(message, category, stacklevel=3)


def memo(kind: str, key: str, compute: Callable[[], T]) -> T:
    """``compute()``, or its stored result when the run's cache already holds ``kind`` for ``key``."""
    folder = directory()
    if folder is None:
        return compute()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{kind}-{key[:32]}.pkl"
    with open(folder / f"{path.name}.lock", "a+") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)  # another process computing this entry: wait for it
        if path.exists():
            with open(path, "rb") as handle:
                value, caught = pickle.load(handle)
        else:
            with warnings.catch_warnings(record=True) as recorded:
                warnings.simplefilter("always")
                value = compute()
            caught = [(w.category, str(w.message)) for w in recorded]
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            with open(tmp, "wb") as handle:
                pickle.dump((value, caught), handle, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, path)  # whole or absent: a reader never sees half an entry
    _reraise(caught)
    return value
