"""nfdump's 'addr:port' (IPv4) and 'addr.port' (IPv6, possibly '..'-shortened) tokens."""

from __future__ import annotations

import polars as pl

from engine.ingest.values import icmp_port


def split_endpoint(token: pl.Series, icmp: pl.Series | None) -> tuple[pl.Series, pl.Series]:
    """-> (addr as printed, Int32 port). `icmp` marks rows whose port is ICMP 'type.code'.

    IPv4 has exactly one ':' before the port. IPv6 carries the port after the last '.', or
    after the last two dots for an ICMP type.code, so '2001:db8..2.53' is ('2001:db8..2', 53).
    """
    token = token.str.strip_chars()
    parts = token.str.split_exact(":", 2)
    # IPv4: one ':' and dots before it; a short IPv6 such as '2001:db8..2.53' has one ':' too.
    v4 = (
        parts.struct.field("field_2").is_null()
        & parts.struct.field("field_1").is_not_null()
        & parts.struct.field("field_0").str.contains(".", literal=True)
    )
    addr = parts.struct.field("field_0")
    port_text = parts.struct.field("field_1")
    v6_rows = (~v4).fill_null(True).arg_true()
    if v6_rows.len():
        sub = token.gather(v6_rows)
        sub_icmp = icmp.gather(v6_rows) if icmp is not None else pl.Series([False] * sub.len())
        one = pl.col("t").str.extract(r"\.([0-9]+)$", 1)
        two = pl.col("t").str.extract(r"\.([0-9]+\.[0-9]+)$", 1)
        got = (
            pl.DataFrame({"t": sub, "i": sub_icmp})
            .select("t", p=pl.when(pl.col("i")).then(two.fill_null(one)).otherwise(one))
            .with_columns(
                a=pl.col("t").str.head(
                    pl.col("t").str.len_chars() - pl.col("p").str.len_chars().fill_null(0) - 1
                )
            )
        )
        addr = addr.scatter(v6_rows, got["a"])
        port_text = port_text.scatter(v6_rows, got["p"])
    if icmp is not None and icmp.any():
        port = icmp_port(port_text)
    else:
        port = port_text.cast(pl.Int32, strict=False)
    return addr, port
