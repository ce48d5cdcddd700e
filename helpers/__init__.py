"""IAPT Pathways: tested helpers behind the replication notebooks of Harwood et al. (2021)."""

import sys

__version__ = "0.2.0"

# jsonschema (under nbformat, so under papermill, nbclient, nbconvert and the book) builds an Earley parser for
# the "iri" string format when it is imported, from rfc3987-syntax: about 2.5 s of CPU in every process of a run
# (a worker per notebook, the tables worker, the run itself). Nothing here checks that format (nbformat
# validates notebooks without format checkers), so the import is declined: jsonschema then has no "iri" check.
sys.modules.setdefault("rfc3987_syntax", None)
