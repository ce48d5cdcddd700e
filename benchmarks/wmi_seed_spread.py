"""Monte Carlo spread of weighted MI against the printed Table 4, over imputation seeds (not a timed test).

Runs weighted MI (conditional weights, M = ``n_imputations``) on one cohort with ``--seeds`` different
imputation seeds, and prints, per treatment OR of Table 4: the mean and SD over seeds of our pooled OR,
how many seeds round to the printed OR / land inside the printed CI, and the same for the completed
% treated among the assessed (within 0.2 points of the printed %). The cohort is fixed (the committed default
unless ``-p`` says otherwise); only the imputation draws change, so the SD is Monte Carlo error.

    .venv/bin/python benchmarks/wmi_seed_spread.py                    # 10 seeds, default cohort, margin=truth
    .venv/bin/python benchmarks/wmi_seed_spread.py -p margin=census2011
    .venv/bin/python benchmarks/wmi_seed_spread.py --seeds 3 --z pathway_stage,age_band,gender,year

``--z`` names the imputation model's variables (main effects; default: every one weighted MI uses, outcomes
and covariates). It asks whether another imputation model, one of the unknowns behind the printed column
(docs/weighted_mi_bounds.md), would move the estimates on this cohort.
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import pandas as pd

from helpers import imputation, pipeline, pooling, replication, study
from helpers import params as params_mod


def parse_z(text: str | None) -> tuple[str, ...]:
    """The ``--z`` list, checked: each name one of ``imputation.DEFAULT_Z``, and ``pathway_stage`` kept."""
    if text is None:
        return imputation.DEFAULT_Z
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    bad = [n for n in names if n not in imputation.DEFAULT_Z]
    if bad or not names:
        raise SystemExit(f"--z: {bad or text!r} not in the imputation model's variables {list(imputation.DEFAULT_Z)}")
    if "pathway_stage" not in names:  # without the outcomes the imputation is not proper for the analysis models
        raise SystemExit("--z must keep pathway_stage (assessed and treated, the outcomes Table 4 compares, "
                         "must be in the imputation model)")
    return names


def spread(p: dict, seeds: int, z: tuple[str, ...] = imputation.DEFAULT_Z
           ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    data = pipeline.load_study_data(p)
    margin = pipeline.population_margin(data)
    published = pipeline.published_table4()
    rows = []
    for s in range(seeds):
        rng = np.random.default_rng(np.random.SeedSequence(p["seed"], spawn_key=(pipeline.STREAMS["imputation"], s)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = imputation.impute_ethnicity(data.frame, margin, p["n_imputations"], rng, z_columns=z)
            est = pooling.mi_estimates_from_rows(data.frame, res, progress=False)
        cmp = replication.published_vs_ours(est, published)
        rows.append(cmp[cmp.analysis == "weighted_mi"].assign(imputation_seed=s))
    allrows = pd.concat(rows, ignore_index=True)
    ors = allrows[allrows.ethnicity != study.REFERENCE_GROUP]
    per_or = ors.groupby(["model", "ethnicity"], sort=False).agg(
        mean_or=("ours_or", "mean"), sd_or=("ours_or", "std"), paper_or=("paper_or", "first"),
        seeds_rounding=("rounds_to_printed", "sum"), seeds_inside_ci=("inside_paper_ci", "sum"))
    pct = allrows[allrows.model == "unadjusted"].assign(
        within_02=lambda d: (d.ours_pct - d.paper_pct).abs() <= 0.2 + 1e-9)
    per_pct = pct.groupby("ethnicity", sort=False).agg(
        mean_pct=("ours_pct", "mean"), sd_pct=("ours_pct", "std"), paper_pct=("paper_pct", "first"),
        seeds_within_02=("within_02", "sum"))
    per_seed = ors.groupby("imputation_seed").agg(rounding=("rounds_to_printed", "sum"),
                                                  inside=("inside_paper_ci", "sum"))
    per_seed["pct_within_02"] = pct.groupby("imputation_seed")["within_02"].sum()
    return per_or, per_pct, per_seed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("-p", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--z", default=None, metavar="VAR,VAR,...",
                        help="imputation model variables (default: " + ",".join(imputation.DEFAULT_Z) + ")")
    args = parser.parse_args(argv)
    values = {}
    for item in args.p:
        name, _, value = item.partition("=")
        values[name] = params_mod.parse_cli_value(name, value)
    p = params_mod.validate(values)
    z = parse_z(args.z)
    per_or, per_pct, per_seed = spread(p, args.seeds, z)
    pd.set_option("display.width", 160)
    print(f"Weighted MI over {args.seeds} imputation seeds, M = {p['n_imputations']}, margin = {p['margin']}, "
          f"imputation model: {', '.join(z)}")
    print(per_or.round(4).to_string())
    print(per_pct.round(3).to_string())
    print("Per seed: ORs rounding to printed (of 21), inside printed CI (of 21), % treated within 0.2 (of 8)")
    print(per_seed.to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
