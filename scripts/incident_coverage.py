"""How well incidents cover the attacks in labelled dumps (issue 15's done-when figures).

    python scripts/incident_coverage.py DUMPS --truth LABELS.csv[.gz] [--model M]

Runs `flowtriage incidents DUMPS --flows` and joins the truth (a labels file: file,line,label):
per true class, the share of its flows that lie in some incident and in an incident of the
same class; the number of incidents; and the incidents made mostly (> 50%) of normal flows.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.cli.entry import main  # noqa: E402
from engine.core.dumpfiles import dump_name_expr  # noqa: E402
from engine.feedback.labelsfile import read_labels  # noqa: E402


def coverage(dumps: list[str], truth: str, model: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out, flows_out = Path(tmp) / "incidents.parquet", Path(tmp) / "flows.parquet"
        argv = ["incidents", *dumps, "-o", str(out), "--flows", str(flows_out), "-q"]
        if model:
            argv += ["--model", model]
        if main(argv) != 0:
            raise SystemExit("flowtriage incidents failed")
        table, flows = pl.read_parquet(out), pl.read_parquet(flows_out)
    labels = read_labels(truth).select("file", "line", "label")
    flows = flows.with_columns(name=dump_name_expr(pl.col("file"))).join(
        labels.rename({"file": "name"}), on=["name", "line"], how="left")
    classes = flows.join(table.select("incident", incident_class="class"), on="incident", how="left")
    per_class = (
        classes.filter(pl.col("label").is_not_null() & (pl.col("label") != "normal"))
        .group_by("label")
        .agg(flows=pl.len(), in_incident=pl.col("incident").is_not_null().mean(),
             in_same_class=(pl.col("incident_class") == pl.col("label")).fill_null(False).mean(),
             incidents=pl.col("incident").drop_nulls().n_unique())
        .sort("label")
    )
    purity = (
        classes.filter(pl.col("incident").is_not_null())
        .group_by("incident").agg(normal=(pl.col("label") == "normal").mean())
    )
    attack_flows = int(per_class["flows"].sum())
    with pl.Config(tbl_rows=50, tbl_hide_dataframe_shape=True):
        print(per_class)
    print(f"{table.height} incidents for {attack_flows:,} attack flows; "
          f"{purity.filter(pl.col('normal') > 0.5).height} made mostly of normal flows; "
          f"{int(flows['label'].eq('normal').sum()):,} normal flows, "
          f"{int((flows['label'].eq('normal') & flows['incident'].is_not_null()).sum()):,} of them in an incident")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dumps", nargs="+")
    parser.add_argument("--truth", required=True)
    parser.add_argument("--model")
    args = parser.parse_args()
    coverage(args.dumps, args.truth, args.model)
