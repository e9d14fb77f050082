"""Scope: which flows are DNS-relevant and get a DNS verdict.

Real dumps carry all traffic, most of it not DNS. flowtriage is a DNS triage tool, so each flow
is in scope when

- it matches `[scope] filter` (nfdump syntax; default `port 53`), or
- it is an ICMP error (destination unreachable: ICMP type 3, ICMPv6 type 1) between two
  addresses that exchange in-filter flows in the same batch and its history (a spoofed
  victim's or a scanned host's answer about a DNS exchange), or
- one end is a *prober*: a source that sends bare probes (no payload, no ACK: a SYN, an empty
  datagram) to port 53 and to at least `prober_targets` distinct targets (address and port)
  in the batch and its history, i.e. a scanner whose sweep includes DNS. Its other probes
  are part of the scan.

Every flow is still read, counted and used as window context; out-of-scope flows skip the
models and are never given a DNS attack verdict (`normal`, score 0, reasons say why).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from engine.filters.language import FilterError, compile_filter

DEFAULT_FILTER = "port 53"
DEFAULT_PROBER_TARGETS = 3
# nfdump folds ICMP type/code into the destination port as type * 256 + code
_UNREACH = {"ICMP": (3 * 256, 3 * 256 + 255), "ICMP6": (1 * 256, 1 * 256 + 255)}
# a probe packet carries no DNS message: a bare SYN is 40-60 bytes (no ACK), a UDP probe at
# most 44 (an empty datagram is 28; the shortest real DNS query is longer: a home client's
# 57-59-byte lookups are no probes)
_PROBE_TCP_BPP = 60.0
_PROBE_UDP_BPP = 44.0

IN_FILTER, ICMP_ERROR, PROBER, OUT = "filter", "icmp-error", "prober", "out"
OUT_REASON = "out of scope: not DNS-relevant (no DNS verdict)"


class ScopeError(ValueError):
    """A scope filter that cannot be compiled; carries the FilterError (caret, position)."""

    def __init__(self, message: str, filter_error: FilterError | None = None) -> None:
        self.filter_error = filter_error
        super().__init__(message)


@dataclass(frozen=True)
class Scope:
    filter: str = DEFAULT_FILTER
    icmp_errors: bool = True
    prober_targets: int = DEFAULT_PROBER_TARGETS  # 0 turns the prober expansion off
    expr: pl.Expr = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.filter.strip():
            raise ScopeError("[scope] filter is empty (use \"any\" to score every flow)")
        try:
            expr = compile_filter(self.filter)
        except FilterError as exc:
            raise ScopeError(f"[scope] filter: {exc}", exc) from None
        if not isinstance(self.prober_targets, int) or self.prober_targets < 0:
            raise ScopeError(f"[scope] prober_targets must be a whole number >= 0, got {self.prober_targets!r}")
        object.__setattr__(self, "expr", expr)

    @classmethod
    def from_config(cls, config) -> Scope:
        return cls(filter=config.filter, icmp_errors=config.icmp_errors, prober_targets=config.prober_targets)

    @property
    def is_everything(self) -> bool:
        return self.filter.strip().lower() == "any"

    def classify(self, flows: pl.DataFrame, history: pl.DataFrame | None = None) -> pl.Series:
        """Per flow of `flows` (same order): why it is in scope (`filter`, `icmp-error`,
        `prober`) or `out`. `history` (earlier flows, not classified) widens the context."""
        if flows.height == 0:
            return pl.Series("scope", [], dtype=pl.String)
        if self.is_everything:
            return pl.Series("scope", [IN_FILTER] * flows.height, dtype=pl.String)
        cols = ["proto", "src_addr", "src_port", "dst_addr", "dst_port", "tcp_flags", "packets", "bytes"]
        own = flows.lazy().select(cols).with_columns(_own=pl.lit(True))
        if history is not None and history.height:
            lf = pl.concat([history.lazy().select(cols).with_columns(_own=pl.lit(False)), own],
                           how="vertical_relaxed")
        else:
            lf = own
        lf = lf.with_columns(_in=self.expr.fill_null(False))
        base = lf.collect()
        out: Any = pl.when(pl.col("_in")).then(pl.lit(IN_FILTER))  # a growing when/then chain
        if self.icmp_errors:
            lo_hi = [(pl.col("proto") == p) & pl.col("dst_port").is_between(lo, hi) for p, (lo, hi) in _UNREACH.items()]
            base = base.with_columns(
                _unreach=pl.any_horizontal(lo_hi).fill_null(False),
                _pair=pl.min_horizontal("src_addr", "dst_addr") + "|" + pl.max_horizontal("src_addr", "dst_addr"),
            )
            dns_pairs = base.filter(pl.col("_in"))["_pair"].unique()
            base = base.with_columns(_icmp=pl.col("_unreach") & pl.col("_pair").is_in(dns_pairs.implode()))
            out = out.when(pl.col("_icmp")).then(pl.lit(ICMP_ERROR))
        if self.prober_targets > 0:
            flags = pl.col("tcp_flags").fill_null("")
            per_packet = pl.col("bytes") / pl.max_horizontal(pl.col("packets"), pl.lit(1))
            probe = (
                ((pl.col("proto") == "TCP") & (per_packet <= _PROBE_TCP_BPP) & (flags.str.slice(3, 1) != "A"))
                | ((pl.col("proto") == "UDP") & (per_packet <= _PROBE_UDP_BPP))
            )
            probes = base.filter(probe)
            probers = (
                probes.group_by("src_addr")
                .agg((pl.col("dst_port") == 53).any().alias("dns"),
                     pl.struct("dst_addr", "dst_port").n_unique().alias("targets"))
                .filter(pl.col("dns") & (pl.col("targets") >= self.prober_targets))["src_addr"]
            )
            base = base.with_columns(
                _prober=pl.col("src_addr").is_in(probers.implode()) | pl.col("dst_addr").is_in(probers.implode())
            )
            out = out.when(pl.col("_prober")).then(pl.lit(PROBER))
        result = base.filter(pl.col("_own")).select(out.otherwise(pl.lit(OUT)).alias("scope"))
        return result["scope"]

    def mask(self, flows: pl.DataFrame, history: pl.DataFrame | None = None) -> np.ndarray:
        """True where a flow of `flows` is in scope."""
        return (self.classify(flows, history) != OUT).to_numpy()


def split(flows: pl.DataFrame, scope: Scope, history: pl.DataFrame | None = None
          ) -> tuple[np.ndarray, pl.Series, pl.DataFrame, pl.DataFrame]:
    """(in-scope mask, scope reason per flow, in-scope flows, their context).

    The context is every other flow (out-of-scope flows of `flows` and `history`) that shares
    an address with an in-scope flow: every feature group of an in-scope flow is keyed on one
    of its two addresses, so its features come out exactly as with all flows as context, at a
    fraction of the work on a mostly non-DNS dump."""
    why = scope.classify(flows, history)
    mask = (why != OUT).to_numpy()
    inside = flows.filter(pl.Series(mask)) if not mask.all() else flows
    parts = [] if history is None or not history.height else [history]
    if not mask.all():
        parts.append(flows.filter(pl.Series(~mask)))
    if parts and inside.height:
        others = pl.concat(parts, how="vertical_relaxed")
        addrs = pl.concat([inside["src_addr"], inside["dst_addr"]]).unique().implode()
        context = others.filter(pl.col("src_addr").is_in(addrs) | pl.col("dst_addr").is_in(addrs))
    else:
        context = flows.clear()
    return mask, why, inside, context


def score_scoped(score_in_scope, flows: pl.DataFrame, scope: Scope,
                 history: pl.DataFrame | None = None) -> pl.DataFrame:
    """`score_in_scope(flows, history)` (a scorer: flows + score, verdict, reasons) on the
    in-scope flows only, with their context as history; out-of-scope flows get score 0,
    verdict normal and a reason saying they are out of scope. Same rows, same order; flows in
    scope by expansion say why (`scope:icmp-error`, `scope:prober`)."""
    mask, why, inside, context = split(flows, scope, history)
    if mask.all():
        scored = score_in_scope(flows, history)
    else:
        result = pl.DataFrame(
            {"score": np.zeros(flows.height), "verdict": ["normal"] * flows.height,
             "reasons": [OUT_REASON] * flows.height},
            schema={"score": pl.Float64, "verdict": pl.String, "reasons": pl.String})
        if inside.height:
            scored_in = score_in_scope(inside, context)
            # columns a scorer adds beyond the three (`why`, detail=True): null out of scope
            extra = [c for c in scored_in.columns
                     if c not in inside.columns and c not in ("score", "verdict", "reasons")]
            result = result.with_columns(pl.lit(None, scored_in.schema[c]).alias(c) for c in extra)
            upd = scored_in.select("score", "verdict", "reasons", *extra).with_columns(
                _i=pl.Series(np.flatnonzero(mask), dtype=pl.UInt32))
            result = result.with_row_index("_i").update(upd, on="_i").drop("_i")
        scored = pl.concat([flows, result], how="horizontal")
    expanded = why.is_in([ICMP_ERROR, PROBER])
    if expanded.any():
        scored = scored.with_columns(
            reasons=pl.when(pl.lit(expanded)).then(pl.format("scope:{}; {}", pl.lit(why), pl.col("reasons")))
            .otherwise(pl.col("reasons")))
    return scored
