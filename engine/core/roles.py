"""The DNS roles of a flow: which end is the client, which the server, query or answer.

One definition for the whole engine (features, vector keys, the label store's "source", host
mixing): a flow from port 53 is an answer, sent by the server to the client; any other flow to
port 53 is a query from the client; a flow from 53 to 53 (resolver to resolver) is an answer,
so its destination is the client. Anything else has no DNS role ("other"), and its source
stands in as the client. `tests/test_architecture.py` pins this for 53 -> 53 flows.
"""

from __future__ import annotations

from typing import Any

import polars as pl

DNS_PORT = 53
ROLE_QUERY, ROLE_ANSWER, ROLE_OTHER = 0, 1, 2
ROLE_NAMES = {ROLE_QUERY: "query", ROLE_ANSWER: "answer", ROLE_OTHER: "other"}


def is_answer() -> pl.Expr:
    return pl.col("src_port") == DNS_PORT


def is_query() -> pl.Expr:
    return (pl.col("dst_port") == DNS_PORT) & (pl.col("src_port") != DNS_PORT)


def role() -> pl.Expr:
    """ROLE_QUERY, ROLE_ANSWER or ROLE_OTHER (Int8)."""
    return (
        pl.when(is_query()).then(ROLE_QUERY).when(is_answer()).then(ROLE_ANSWER)
        .otherwise(ROLE_OTHER).cast(pl.Int8)
    )


def role_name() -> pl.Expr:
    """"query", "answer" or "other"."""
    return (
        pl.when(is_query()).then(pl.lit("query")).when(is_answer()).then(pl.lit("answer"))
        .otherwise(pl.lit("other"))
    )


def client_addr() -> pl.Expr:
    """The end of a flow that is not the DNS server: the destination of an answer, otherwise
    the source."""
    return pl.when(is_answer()).then(pl.col("dst_addr")).otherwise(pl.col("src_addr"))


def server_addr() -> pl.Expr:
    """The other end (see client_addr)."""
    return pl.when(is_answer()).then(pl.col("src_addr")).otherwise(pl.col("dst_addr"))


def client_of(src_addr: Any, src_port: int | None, dst_addr: Any) -> Any:
    """client_addr for one flow held as Python values."""
    return dst_addr if src_port == DNS_PORT else src_addr
