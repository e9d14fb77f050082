"""Labels files (`train --labels`, `eval --truth`): CSV ground truth joined to flows.

A labels file has a `label` column and one of two keys (README "Labels files"):
- provenance `file, line`: the dump's name and the 1-based line of the flow in its text. The name
  is compared without directory and without a compression suffix (.gz .bz2 .xz .zst) on both
  sides, so `nfcapd.202611220835.txt` matches flows read from `/x/nfcapd.202611220835.txt.gz`.
  As a convenience a name may also omit the text extension (`nfcapd.202611220835` matches
  `nfcapd.202611220835.txt`) when exactly one dump fits.
- the flow key `ts_first, src_addr, src_port, dst_addr, dst_port, proto`: `ts_first` is compared
  to the millisecond when the row has a fraction, else to the second.
When a file has both, provenance wins. Rows with an empty label are ignored. When a key appears
more than once, the last row wins (a later correction overrides an earlier line).
The file itself may be compressed like a dump (recognised by its content).
"""

from __future__ import annotations

import lzma
from collections.abc import Callable, Iterable
from pathlib import Path

import polars as pl

from engine.core.dumpfiles import dump_name_expr, read_text_bytes
from engine.core.errors import UserError
from engine.core.schema import FLOW_KEY, FLOW_SCHEMA, LABELS, PROTO_NAMES, PROVENANCE_KEY

TEXT_SUFFIXES: tuple[str, ...] = (".txt", ".csv", ".json", ".ndjson")
_TS_FORMATS = ("%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f")
_SECOND_PRECISION = "_second_precision"
# columns an export carries beyond the key, kept when a file has them (labels import)
_PASSTHROUGH: dict[str, pl.DataType] = {
    "note": pl.String(), "model_version": pl.String(), "verdict": pl.String(), "score": pl.Float64(),
}


def read_labels(
    path: str | Path,
    *,
    extra_classes: Iterable[str] = (),
    vocabulary: Iterable[str] | None = None,
    strict: bool = True,
    warn: Callable[[str], None] | None = None,
) -> pl.DataFrame:
    """Read a labels file into `label` plus typed key columns (`file, line` and/or the flow
    key), and the optional columns an export carries (note, model_version, verdict, score).

    The one reader of the format: `train --labels`, `eval --truth` and `labels import` all use
    it, so a file yields the same keys for each (protocols spelled as flows spell them, names
    without directory or compression suffix). Labels outside the vocabulary (LABELS plus
    `extra_classes`, or `vocabulary` when given) are refused. A row with an unreadable key is
    an error naming the file and line when `strict`; otherwise it is reported to `warn` and
    skipped (the label store imports what it can).
    """
    path = Path(path)
    raw = _read_csv(path)
    columns = {c.strip().lower(): c for c in raw.columns}
    if "label" not in columns:
        raise UserError(f"{path}: no 'label' column (found: {', '.join(raw.columns) or 'none'})")
    raw = raw.rename({orig: norm for norm, orig in columns.items()})
    # Row numbers as the user sees them: line 1 is the header.
    raw = raw.with_row_index("_row", offset=2).with_columns(pl.col("label").str.strip_chars())
    no_label = pl.col("label").is_null() | (pl.col("label") == "")
    if not strict:  # the label store reports what it does not import
        _BadRows(path, strict, warn).drop(raw, no_label, "no label")
    raw = raw.filter(~no_label)
    known = list(vocabulary) if vocabulary is not None else [*LABELS, *extra_classes]
    _check_vocabulary(path, raw, known)
    has_provenance = all(c in columns for c in PROVENANCE_KEY)
    has_flow_key = all(c in columns for c in FLOW_KEY)
    if not (has_provenance or has_flow_key):
        raise UserError(
            f"{path}: a labels file needs a 'label' column and either 'file, line' or "
            f"'{', '.join(FLOW_KEY)}' (found: {', '.join(raw.columns[1:])})"
        )
    bad = _BadRows(path, strict, warn)
    labels = raw.select("_row", "label")
    if has_provenance:
        provenance = raw.select(
            dump_name_expr(pl.col("file").str.strip_chars()).alias("file"),
            pl.col("line").str.strip_chars().cast(pl.Int64, strict=False).alias("line"),
        )
        labels = pl.concat([labels, provenance], how="horizontal").with_columns(
            # an unusable half of the key counts as no key
            pl.when(pl.col("file") != "").then(pl.col("file")).alias("file"),
            pl.when(pl.col("line") >= 1).then(pl.col("line")).alias("line"),
        )
    if has_flow_key:
        labels = pl.concat([labels, _flow_key_columns(raw)], how="horizontal")
    extras = [c for c in _PASSTHROUGH if c in columns]
    if extras:
        labels = pl.concat(
            [labels, raw.select(pl.col(c).cast(_PASSTHROUGH[c], strict=False) for c in extras)],
            how="horizontal",
        )
    if has_provenance and has_flow_key:  # a row needs one complete key set
        complete = [
            pl.all_horizontal(pl.col(list(PROVENANCE_KEY)).is_not_null()),
            pl.all_horizontal(pl.col(list(FLOW_KEY)).is_not_null()),
        ]
        labels = bad.drop(labels, ~pl.any_horizontal(complete), "no complete key")
    elif has_provenance:
        labels = bad.drop(labels, pl.col("file").is_null(), "an empty 'file'")
        labels = bad.drop(labels, pl.col("line").is_null(), "a bad 'line' number")
    else:
        for column in FLOW_KEY:
            labels = bad.drop(labels, pl.col(column).is_null(), f"an empty or unreadable '{column}'")
    key: tuple[str, ...] = PROVENANCE_KEY if has_provenance else (*FLOW_KEY, _SECOND_PRECISION)
    order = [
        *(PROVENANCE_KEY if has_provenance else ()),
        *((*FLOW_KEY, _SECOND_PRECISION) if has_flow_key else ()),
        "label", *extras,
    ]
    return labels.unique(subset=list(key), keep="last", maintain_order=True).select(order)


def join_labels(flows: pl.DataFrame, labels: pl.DataFrame) -> pl.Series:
    """One label per row of `flows` (String, null where the labels file says nothing).

    `labels` is what read_labels returns, or any frame with `label` and either `file, line`
    or the typed FLOW_KEY columns (then timestamps are compared to the millisecond).
    """
    if "line" in labels.columns:
        joined = _join_provenance(flows, labels)
    else:
        joined = _join_flow_key(flows, labels)
    return joined.alias("label").cast(pl.String)


def join_many(flows: pl.DataFrame, labels: list[pl.DataFrame]) -> pl.Series:
    """join_labels over several labels files; where two say something, the later one wins."""
    if not labels:
        return pl.repeat(None, flows.height, dtype=pl.String, eager=True).alias("label")
    joined = [join_labels(flows, frame).alias(f"l{i}") for i, frame in enumerate(labels)]
    return pl.DataFrame(joined[::-1]).select(pl.coalesce(pl.all()).alias("label"))["label"]


def _read_csv(path: Path) -> pl.DataFrame:
    try:
        data = read_text_bytes(path)
    except FileNotFoundError:
        raise UserError(f"{path}: no such labels file") from None
    except (OSError, EOFError, lzma.LZMAError) as exc:
        raise UserError(f"{path}: cannot read labels file: {exc}") from None
    if not data.strip():
        raise UserError(f"{path}: labels file is empty")
    try:
        return pl.read_csv(data, infer_schema=False, truncate_ragged_lines=False)
    except pl.exceptions.PolarsError as exc:
        raise UserError(f"{path}: not a readable CSV labels file: {str(exc).splitlines()[0]}") from None


def _check_vocabulary(path: Path, raw: pl.DataFrame, vocabulary: list[str]) -> None:
    unknown = (
        raw.filter(~pl.col("label").is_in(vocabulary))
        .group_by("label")
        .agg(pl.len().alias("n"), pl.col("_row").min().alias("first"))
        .sort("first")
    )
    if unknown.height:
        shown = "; ".join(
            f"{label!r} x{n} (first at line {first})"
            for label, n, first in unknown.head(10).iter_rows()
        )
        raise UserError(
            f"{path}: {unknown['n'].sum()} row(s) with labels outside the vocabulary: {shown}. "
            f"Known labels: {', '.join(vocabulary)} (add classes with [labels] extra_classes)"
        )


class _BadRows:
    """Rows with an unreadable key: an error (strict), or reported and dropped."""

    def __init__(self, path: Path, strict: bool, warn: Callable[[str], None] | None) -> None:
        self.path, self.strict, self.warn = path, strict, warn

    def drop(self, frame: pl.DataFrame, bad: pl.Expr, what: str) -> pl.DataFrame:
        rows = frame.filter(bad)["_row"]
        if not rows.len():
            return frame
        if self.strict:
            first = ", ".join(str(r) for r in rows.head(5))
            raise UserError(f"{self.path}: {rows.len()} row(s) with {what} (line {first})")
        if self.warn is not None:
            for row in rows.head(10):
                self.warn(f"{self.path}:{row}: skipped: {what}")
            if rows.len() > 10:
                self.warn(f"{self.path}: {rows.len() - 10} more row(s) with {what} skipped")
        return frame.filter(~bad)


def _flow_key_columns(raw: pl.DataFrame) -> pl.DataFrame:
    """The flow key typed as flows type it, one row per row of `raw`."""
    ts_text = pl.col("ts_first").str.strip_chars()
    proto_text = pl.col("proto").str.strip_chars().str.to_uppercase()
    # a protocol by number or by name in any case, as flows spell it (nfdump's 'IPv6', 'Trnk1')
    spelled = {str(n): name for n, name in PROTO_NAMES.items()}
    spelled |= {name.upper(): name for name in PROTO_NAMES.values()}
    spellings = pl.DataFrame({"_spelled": list(spelled), "_name": list(spelled.values())})
    typed = (
        raw.join(
            spellings, left_on=proto_text, right_on="_spelled", how="left", maintain_order="left"
        )
        .select(
            "_row",
            pl.coalesce(
                ts_text.str.to_datetime(fmt, time_unit="ms", strict=False) for fmt in _TS_FORMATS
            ).alias("ts_first"),
            pl.col("src_addr").str.strip_chars(),
            pl.col("src_port").str.strip_chars().cast(pl.Int32, strict=False),
            pl.col("dst_addr").str.strip_chars(),
            pl.col("dst_port").str.strip_chars().cast(pl.Int32, strict=False),
            pl.coalesce("_name", proto_text).alias("proto"),
            "label",
            (~ts_text.str.contains(r":\d\d\.\d")).alias(_SECOND_PRECISION),
        )
    )
    return typed.drop("_row", "label")


def _join_provenance(flows: pl.DataFrame, labels: pl.DataFrame) -> pl.Series:
    left = flows.select(dump_name_expr(pl.col("file")).alias("file"), pl.col("line").cast(pl.Int64))
    names = _resolve_names(left["file"].unique(), labels["file"].unique())
    right = (
        labels.join(names, left_on="file", right_on="label_name", how="inner")
        .select(pl.col("dump_name").alias("file"), "line", "label")
        .unique(subset=["file", "line"], keep="last", maintain_order=True)
    )
    return left.join(right, on=["file", "line"], how="left", maintain_order="left")["label"]


def _resolve_names(dumps: pl.Series, named: pl.Series) -> pl.DataFrame:
    # Over distinct names only (a few hundred at most), never over rows.
    dump_set = set(dumps.drop_nulls().to_list())
    by_stem: dict[str, list[str]] = {}
    for dump in dump_set:
        for suffix in TEXT_SUFFIXES:
            if dump.lower().endswith(suffix):
                by_stem.setdefault(dump[: -len(suffix)], []).append(dump)
    pairs = []
    for name in named.drop_nulls().to_list():
        if name in dump_set:
            pairs.append((name, name))
        elif len(by_stem.get(name, ())) == 1:
            pairs.append((name, by_stem[name][0]))
    return pl.DataFrame(pairs, schema={"label_name": pl.String, "dump_name": pl.String}, orient="row")


def _join_flow_key(flows: pl.DataFrame, labels: pl.DataFrame) -> pl.Series:
    key = list(FLOW_KEY)
    if _SECOND_PRECISION not in labels.columns:  # a frame built in code: exact timestamps
        labels = labels.with_columns(pl.lit(False).alias(_SECOND_PRECISION))
    left = flows.select(pl.col(c).cast(FLOW_SCHEMA[c]) for c in key)
    precise = labels.filter(~pl.col(_SECOND_PRECISION)).select(*key, "label")
    coarse = labels.filter(pl.col(_SECOND_PRECISION)).select(
        *key, pl.col("label").alias("label_s")
    )
    by_ms = left.join(precise, on=key, how="left", maintain_order="left")
    by_s = (
        left.with_columns(pl.col("ts_first").dt.truncate("1s"))
        .join(
            coarse.unique(subset=key, keep="last", maintain_order=True),
            on=key,
            how="left",
            maintain_order="left",
        )
    )
    return by_ms.with_columns(by_s["label_s"]).select(pl.coalesce("label", "label_s"))["label"]
