"""The house plan as code: every helpers module's layer, from study facts at the bottom to the run at the top.

A module imports only modules of its own layer or of layers below it, and the imports form no circle;
``tests/test_layers.py`` reads every module's imports (``ast``) and fails on an arrow that runs up, a circle,
a helpers module missing from this map, or a function-level import without a one-line reason.
``docs/house.md`` describes the layers and why each module sits where it does.
"""

from __future__ import annotations

#: Bottom to top. A module may import from its own layer (no circle) and from every layer listed before it.
LAYERS: dict[str, tuple[str, ...]] = {
    # fixed facts of the study, the NHS code lists, the run's parameters (and this map)
    "facts": ("study", "codes", "params", "layers"),
    # generic engines that know no study model: count-based ML fits, design coding, disclosure rules, census,
    # the run-level cache of shared results
    "engines": ("fitting", "design", "disclosure", "census", "cache"),
    # calibration targets, the opt-in solved missing part, the synthetic cohort, the extract engine (its checks,
    # column mapping, reading, SQL, engines, flow, and its face), the analysis frame, the data dictionary, a frame
    # with planted gaps
    "data": ("targets", "calibrate", "mnar_wmi", "cohort", "planted",
             "extract_checks", "extract_columns", "extract_read", "extract_sql",
             "extract_engines", "extract_flow", "extract", "prepare", "datadict"),
    # the nine models, Rubin's rules, weighted MI, rates per resident, teaching variants
    "analysis": ("models", "pooling", "imputation", "population", "teaching"),
    # Table 1 and counts; ours beside the paper and the planted truth; gaps and checklists; figures (their
    # shared look, the results', the lessons', and the one name notebooks call them by); display
    "report": ("tables", "replication", "reporting", "figstyle", "report_plots", "teaching_plots", "plots",
               "publish"),
    # parameters -> data -> estimates -> outputs (from rows, or from carried pattern counts alone)
    "pipeline": ("pipeline", "fromcounts"),
    # orchestration and tools: simulation studies, the notebook run (its command line, output folder, run.json,
    # path scrubbing, papermill execution, notebook and tables worker processes, real-extract checks, parallel
    # scheduler), the book, student versions, checks
    "run": ("simulation", "run", "runcli", "outfolder", "runrecord", "scrub", "execute", "worker", "tablesworker",
            "real_extract",
            "parallel", "book", "exercises", "check_outputs", "notebook", "twins"),
}


def layer_of(module: str) -> int:
    """Position of ``module`` (a helpers module name, e.g. ``"models"``) in :data:`LAYERS`, bottom = 0."""
    for i, modules in enumerate(LAYERS.values()):
        if module in modules:
            return i
    raise KeyError(f"helpers.{module} has no layer in helpers.layers.LAYERS; add it to the layer it belongs to")
