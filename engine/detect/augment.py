"""Training-set augmentation: put every attack-only host inside a normal one.

Lab corpora give most attacks hosts of their own, so host and pair context nearly names the
class, and a model learns "this host only attacks" instead of what the attack looks like. On a
real network the flood comes from a laptop that also browses, and the tunnel hides behind a NAT
that carries thirty stubs. `mix_hosts` makes that case from labelled data: each client address
whose flows are all attacks is renamed to a client address whose flows are all normal, so the
attack lands in a host with ordinary traffic around it, with its own labels unchanged. The
model, fitted on the original and the mixed copy, has to find the attack at the level of the
flow and the conversation, which is what carries over to other networks.

`thin_attacks` does the same for rates: an attack seen at 400 queries/s teaches nothing about
the same attack at 40. Thinning keeps each one-packet attack flow with probability 1/factor
and divides the packets (and bytes, at the same bytes per packet) of larger ones, so the
copy is the same attack, from the same sockets, at a rate the lab never ran.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from engine.core.roles import client_addr, server_addr
from engine.core.schema import ANOMALY, NORMAL


def host_mapping(flows: pl.DataFrame, labels: pl.Series, seed: int = 0) -> dict[str, str]:
    """{attack-only client: normal-only client active at the same time}; {} if there is none.

    Normal-only clients never appear as a server (a resolver is no stub). Each attacker gets a
    stub whose flows overlap its own in time (else the mixed host would just take turns), a
    different one while there are enough.
    """
    frame = flows.select("ts_first", client=client_addr(), server=server_addr()).with_columns(
        label=labels.cast(pl.String)
    )
    known = frame.filter(pl.col("label").is_not_null() & (pl.col("label") != ANOMALY))
    per_client = known.group_by("client").agg(
        attack=(pl.col("label") != NORMAL).all(),
        normal=(pl.col("label") == NORMAL).all(),
        start=pl.col("ts_first").min(),
        end=pl.col("ts_first").max(),
    ).sort("client")
    servers = known["server"].unique()
    # a resolver's forwarding legs make it a "client" too: it is no host to hide an attack in
    not_server = ~pl.col("client").is_in(servers.implode())
    attackers = per_client.filter(pl.col("attack") & not_server)
    stubs = per_client.filter(pl.col("normal") & not_server)
    if attackers.is_empty() or stubs.is_empty():
        return {}
    rng = np.random.default_rng(seed)
    s_start, s_end = stubs["start"].to_numpy(), stubs["end"].to_numpy()
    s_names = stubs["client"].to_list()
    used: set[int] = set()
    mapping = {}
    for name, start, end in attackers.select("client", "start", "end").iter_rows():
        overlap = np.flatnonzero((s_start <= np.datetime64(end)) & (s_end >= np.datetime64(start)))
        pool: list[int] = (
            [int(i) for i in overlap if i not in used] or [int(i) for i in overlap]
            or list(range(len(s_names)))
        )
        pick = int(pool[rng.integers(len(pool))])
        used.add(pick)
        mapping[name] = s_names[pick]
    return mapping


def mix_hosts(flows: pl.DataFrame, mapping: dict[str, str]) -> pl.DataFrame:
    """`flows` with every mapped address renamed, at either end."""
    if not mapping:
        return flows
    old, new = list(mapping), list(mapping.values())
    return flows.with_columns(
        pl.col(c).replace(old, new) for c in ("src_addr", "dst_addr")
    )


def thin_attacks(
    flows: pl.DataFrame, labels: pl.Series, factor: int, seed: int = 0
) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    """The flows left after thinning the attack flows by `factor`, which input rows they are
    (a boolean mask), and a weight for each: `factor` for an attack flow, so the thinned attack
    weighs what the original did, 1 for the rest. Normal and unlabelled flows are kept as
    they are."""
    label = labels.cast(pl.String)
    attack = (label.is_not_null() & (label != NORMAL) & (label != ANOMALY)).to_numpy()
    single = (flows["packets"] <= 1).to_numpy()
    rng = np.random.default_rng(seed)
    keep = ~attack | ~single | (rng.random(flows.height) < 1.0 / factor)
    packets = pl.col("packets")
    fewer = (packets + factor - 1) // factor
    scaled = pl.lit(pl.Series(attack & ~single))
    thinned = flows.with_columns(
        packets=pl.when(scaled).then(fewer).otherwise(packets),
        bytes=pl.when(scaled)
        .then((pl.col("bytes") * fewer / packets).round().cast(flows.schema["bytes"]))
        .otherwise(pl.col("bytes")),
    )
    return thinned.filter(pl.Series(keep)), keep, np.where(attack, float(factor), 1.0)[keep]
