"""Incidents: flagged flows grouped into attack episodes, the unit an operator triages.

An incident is one class of attack around one address (its *anchor*) with no quiet gap longer
than `quiet_seconds` of flow time: "amplification: 52 reflectors -> victim V", "tunnel: client
C via resolver R", "scan by S of 700 targets". IncidentTracker.add() is fed scored batches in
rotation order (the live pipeline, `score`, `incidents`), so a batch tool and the live view
give the same incidents for the same dumps; an incident continues across rotations and closes
once nothing joined it for `quiet_seconds` (flow time, never the wall clock).

The anchor of a flagged flow is chosen, in order (an amplification is always anchored at its
victim, the client end):
1. an end that anchors an open incident of the same class (the episode goes on);
2. else the end with more distinct peers among this batch's new flows of that class (the
   victim of many reflectors, the scanner of many targets, the resolver of a spoofed flood);
3. on a tie, the class's usual end: the server (port-53 end) for floods and open resolvers,
   the client otherwise (victim of amplification, tunnel client, scanner, prober).

The id is a hash of (class, anchor, first flow time): the same dumps give the same ids.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import polars as pl

from engine.core.roles import client_addr
from engine.core.schema import NORMAL

QUIET_SECONDS = 300.0  # an episode ends after this long without a flow (flow time)
PEERS_KEPT = 10_000  # distinct peers remembered per incident; beyond, counts are lower bounds
ADDRESSES_SHOWN = 10  # addresses listed per role in a table row
SPARK_MINUTES = 30  # per-minute flow counts kept for the sparkline

# Classes whose anchor defaults to the server end on a tie (see the module docstring).
SERVER_ANCHORED = frozenset({"dns_flood", "open_resolver"})
# Classes anchored at the client end whatever the fan-out: an amplification is about its
# victim (one incident per victim, however many reflectors; a shared resolver reflecting to
# three victims is three attacks, not one).
CLIENT_ANCHORED = frozenset({"amplification"})

# (class, the anchor is the client end) -> (role of the anchor, role of its peers)
ROLES: dict[tuple[str, bool], tuple[str, str]] = {
    ("amplification", True): ("victim", "reflector"),
    ("amplification", False): ("reflector", "victim"),
    ("dns_flood", True): ("attacker", "resolver"),
    ("dns_flood", False): ("victim", "attacker"),
    ("tunnel", True): ("tunnel_endpoint", "resolver"),
    ("tunnel", False): ("resolver", "tunnel_endpoint"),
    ("scan", True): ("attacker", "victim"),
    ("scan", False): ("victim", "attacker"),
    ("zero_packet", True): ("attacker", "resolver"),
    ("zero_packet", False): ("resolver", "attacker"),
    ("open_resolver", True): ("attacker", "resolver"),
    ("open_resolver", False): ("resolver", "attacker"),
}
DEFAULT_ROLES = {True: ("attacker", "victim"), False: ("victim", "attacker")}
ROLE_COLUMNS = ("attackers", "victims", "reflectors", "resolvers", "tunnel_endpoints")
_ROLE_COLUMN = {"attacker": "attackers", "victim": "victims", "reflector": "reflectors",
                "resolver": "resolvers", "tunnel_endpoint": "tunnel_endpoints"}

INCIDENT_SCHEMA: dict[str, pl.DataType] = {
    "rank": pl.Int64(), "incident": pl.String(), "class": pl.String(), "state": pl.String(),
    "first_seen": pl.Datetime("us"), "last_seen": pl.Datetime("us"),
    "flows": pl.Int64(), "packets": pl.Int64(), "bytes": pl.Int64(), "max_score": pl.Float64(),
    "peak_rate": pl.Float64(), "peers": pl.Int64(), "anchor": pl.String(),
    "anchor_role": pl.String(), "summary": pl.String(),
    **{name: pl.String() for name in ROLE_COLUMNS},
    "activity": pl.List(pl.Int64()),
}


def incident_id(cls: str, anchor: str, first_seen: datetime) -> str:
    digest = hashlib.sha256(f"{cls}|{anchor}|{first_seen.isoformat()}".encode()).hexdigest()
    return digest[:12]


@dataclass
class Incident:
    id: str
    cls: str
    anchor: str
    anchor_is_client: bool
    first_seen: datetime
    last_seen: datetime
    flows: int = 0
    packets: int = 0
    bytes: int = 0
    max_score: float = 0.0
    peers: set[str] = field(default_factory=set)
    peers_capped: bool = False
    per_10s: dict[int, int] = field(default_factory=dict)  # epoch // 10 -> flows
    per_minute: dict[int, int] = field(default_factory=dict)  # epoch // 60 -> flows
    closed: bool = False

    @property
    def roles(self) -> tuple[str, str]:
        return ROLES.get((self.cls, self.anchor_is_client), DEFAULT_ROLES[self.anchor_is_client])

    @property
    def peak_rate(self) -> float:
        """Most flows in any 10 s of the episode, per second."""
        return max(self.per_10s.values(), default=0) / 10.0

    def summary(self) -> str:
        """Who did what to whom, in a short line (the class says what): "52 reflectors ->
        10.0.0.7", "10.5.0.66 -> 700 victims", "10.3.0.9 via 10.0.0.53"."""
        anchor_role, peer_role = self.roles
        n = len(self.peers)
        if n == 1:
            others = next(iter(self.peers))
        else:
            others = f"{n:,}{'+' if self.peers_capped else ''} {peer_role.replace('_', ' ')}s"
        if anchor_role == "tunnel_endpoint":
            return f"{self.anchor} via {others}"
        if anchor_role in ("attacker", "reflector"):
            return f"{self.anchor} -> {others}"
        return f"{others} -> {self.anchor}"

    def row(self) -> dict:
        anchor_role, peer_role = self.roles
        by_role: dict[str, str] = {name: "" for name in ROLE_COLUMNS}
        by_role[_ROLE_COLUMN[anchor_role]] = self.anchor
        peers = sorted(self.peers)
        listed = ",".join(peers[:ADDRESSES_SHOWN])
        more = len(peers) - ADDRESSES_SHOWN
        if more > 0 or self.peers_capped:
            listed += f",+{more if more > 0 else 0}{'+' if self.peers_capped else ''} more"
        column = _ROLE_COLUMN[peer_role]
        by_role[column] = listed if not by_role[column] else f"{by_role[column]},{listed}"
        end = max(self.per_minute, default=0)
        activity = [self.per_minute.get(m, 0) for m in range(end - SPARK_MINUTES + 1, end + 1)]
        return {
            "incident": self.id, "class": self.cls, "state": "closed" if self.closed else "open",
            "first_seen": self.first_seen, "last_seen": self.last_seen, "flows": self.flows,
            "packets": self.packets, "bytes": self.bytes, "max_score": self.max_score,
            "peak_rate": self.peak_rate, "peers": len(self.peers), "anchor": self.anchor,
            "anchor_role": anchor_role, "summary": self.summary(), **by_role, "activity": activity,
        }


@dataclass(frozen=True)
class IncidentEvent:
    kind: str  # "open", "update" or "close"
    row: dict  # Incident.row() after the batch

    def record(self) -> dict:
        """JSON-ready: times as ISO text."""
        out = {"event": self.kind}
        for key, value in self.row.items():
            out[key] = value.isoformat() if isinstance(value, datetime) else value
        return out


class IncidentTracker:
    """Groups each scored batch's flagged flows into incidents (see the module docstring)."""

    def __init__(self, threshold: float, quiet_seconds: float = QUIET_SECONDS) -> None:
        self.threshold = threshold
        self.quiet = timedelta(seconds=quiet_seconds)
        self.incidents: dict[str, Incident] = {}  # every incident still kept, open or closed
        self._open: dict[tuple[str, str], str] = {}  # (class, anchor) -> its open incident
        self.clock: datetime | None = None  # newest flow time seen

    # ---- one batch ---------------------------------------------------------------------

    def add(self, scored: pl.DataFrame) -> tuple[pl.Series, list[IncidentEvent]]:
        """The incident of each row of `scored` (null for flows in none) and the events the
        batch caused: open (new), update (grew), close (quiet for `quiet_seconds`)."""
        ids = pl.repeat(None, scored.height, dtype=pl.String, eager=True).alias("incident")
        # every flow moves the clock, flagged or not: quiet is measured in the traffic's time
        newest = scored["ts_first"].max() if scored.height else None
        if isinstance(newest, datetime) and (self.clock is None or newest > self.clock):
            self.clock = newest
        flagged = (
            scored.with_row_index("_i")
            .filter((pl.col("score") >= self.threshold) & (pl.col("verdict") != NORMAL)
                    & pl.col("verdict").is_not_null() & pl.col("ts_first").is_not_null())
            .select("_i", cls="verdict", src="src_addr", dst="dst_addr", client=client_addr(),
                    ts=pl.col("ts_first"), ts_last=pl.col("ts_last").fill_null(pl.col("ts_first")),
                    packets=pl.col("packets").fill_null(0), bytes=pl.col("bytes").fill_null(0),
                    score="score")
        )
        if flagged.height == 0:
            return ids, self._close_quiet([])
        flagged = self._anchor(flagged)
        flagged = self._segment(flagged)
        ids = ids.scatter(flagged["_i"], flagged["incident"])
        touched = self._fold(flagged)
        events = [IncidentEvent(kind, self.incidents[i].row()) for i, kind in touched.items()]
        return ids, self._close_quiet(events)

    def _anchor(self, flows: pl.DataFrame) -> pl.DataFrame:
        """Add `anchor` (an address) and `is_client` (the anchor is the flow's client end)."""
        if self._open:
            current = pl.DataFrame(
                [(cls, anchor, self.incidents[i].flows) for (cls, anchor), i in self._open.items()],
                schema={"cls": pl.String, "a": pl.String, "n": pl.Int64}, orient="row",
            )
            flows = (
                flows.join(current.rename({"a": "src", "n": "n_src"}), on=["cls", "src"], how="left")
                .join(current.rename({"a": "dst", "n": "n_dst"}), on=["cls", "dst"], how="left")
            )
        else:
            flows = flows.with_columns(n_src=pl.lit(None, pl.Int64), n_dst=pl.lit(None, pl.Int64))
        joined = pl.col("n_src").is_not_null() | pl.col("n_dst").is_not_null()
        fresh = flows.filter(~joined)
        pairs = pl.concat([
            fresh.select("cls", a="src", b="dst"), fresh.select("cls", a="dst", b="src"),
        ])
        fan = pairs.group_by("cls", "a").agg(fan=pl.col("b").n_unique())
        flows = (
            flows.join(fan.rename({"a": "src", "fan": "f_src"}), on=["cls", "src"], how="left")
            .join(fan.rename({"a": "dst", "fan": "f_dst"}), on=["cls", "dst"], how="left")
        )
        server = pl.when(pl.col("client") == pl.col("src")).then(pl.col("dst")).otherwise(pl.col("src"))
        default = pl.when(pl.col("cls").is_in(list(SERVER_ANCHORED))).then(server).otherwise(pl.col("client"))
        anchor = (
            pl.when(pl.col("cls").is_in(list(CLIENT_ANCHORED))).then(pl.col("client"))
            .when(pl.col("n_src").is_not_null() & (pl.col("n_src") >= pl.col("n_dst").fill_null(-1)))
            .then(pl.col("src"))
            .when(pl.col("n_dst").is_not_null()).then(pl.col("dst"))
            .when(pl.col("f_src") > pl.col("f_dst")).then(pl.col("src"))
            .when(pl.col("f_dst") > pl.col("f_src")).then(pl.col("dst"))
            .otherwise(default)
        )
        return flows.with_columns(anchor=anchor).with_columns(
            is_client=pl.col("anchor") == pl.col("client"),
            peer=pl.when(pl.col("anchor") == pl.col("src")).then(pl.col("dst")).otherwise(pl.col("src")),
        ).drop("n_src", "n_dst", "f_src", "f_dst")

    def _segment(self, flows: pl.DataFrame) -> pl.DataFrame:
        """Split each (class, anchor) at quiet gaps; the first piece continues the open
        incident when it is near enough; add `incident`."""
        last = pl.DataFrame(
            [(cls, anchor, i, self.incidents[i].last_seen) for (cls, anchor), i in self._open.items()],
            schema={"cls": pl.String, "anchor": pl.String, "open_id": pl.String,
                    "open_last": pl.Datetime("us")},
            orient="row",
        )
        flows = flows.sort("cls", "anchor", "ts").join(
            last.with_columns(pl.col("open_last").cast(flows.schema["ts"])),
            on=["cls", "anchor"], how="left",
        )
        reach = pl.col("ts_last").cum_max().shift(1).over("cls", "anchor")
        previous = pl.when(reach.is_null()).then(pl.col("open_last")).otherwise(reach)
        starts = previous.is_null() | ((pl.col("ts") - previous) > self.quiet)
        flows = flows.with_columns(_new=starts).with_columns(_seg=pl.col("_new").cum_sum().over("cls", "anchor"))
        firsts = (
            flows.group_by("cls", "anchor", "_seg")
            .agg(first=pl.col("ts").min(), new=pl.col("_new").first(), open_id=pl.col("open_id").first())
        )
        names = [
            open_id if not new and open_id is not None else incident_id(cls, anchor, first)
            for cls, anchor, first, new, open_id in firsts.select(
                "cls", "anchor", "first", "new", "open_id").iter_rows()
        ]
        firsts = firsts.with_columns(incident=pl.Series(names, dtype=pl.String)).select(
            "cls", "anchor", "_seg", "incident")
        return flows.join(firsts, on=["cls", "anchor", "_seg"], how="left")

    def _fold(self, flows: pl.DataFrame) -> dict[str, str]:
        """Add the batch to the incidents; returns {id: "open" | "update"} for each touched."""
        per = flows.group_by("incident").agg(
            cls=pl.col("cls").first(), anchor=pl.col("anchor").first(),
            is_client=pl.col("is_client").first(), first=pl.col("ts").min(),
            last=pl.max_horizontal(pl.col("ts_last").max(), pl.col("ts").max()),
            flows=pl.len(), packets=pl.col("packets").sum(), bytes=pl.col("bytes").sum(),
            max_score=pl.col("score").max(), peers=pl.col("peer").unique().head(PEERS_KEPT),
        ).sort("first")
        epoch = pl.col("ts").dt.epoch("s")
        tens = flows.group_by("incident", b=epoch // 10).len()
        minutes = flows.group_by("incident", b=epoch // 60).len()
        counts: dict[str, tuple[dict[int, int], dict[int, int]]] = {}
        for name, bucket, n in tens.iter_rows():
            counts.setdefault(name, ({}, {}))[0][bucket] = n
        for name, bucket, n in minutes.iter_rows():
            counts.setdefault(name, ({}, {}))[1][bucket] = n
        touched: dict[str, str] = {}
        for row in per.iter_rows(named=True):
            name = row["incident"]
            incident = self.incidents.get(name)
            if incident is None:
                incident = Incident(name, row["cls"], row["anchor"], bool(row["is_client"]),
                                    row["first"], row["last"])
                self.incidents[name] = incident
                touched[name] = "open"
            else:
                touched.setdefault(name, "update")
            incident.first_seen = min(incident.first_seen, row["first"])
            incident.last_seen = max(incident.last_seen, row["last"])
            incident.flows += row["flows"]
            incident.packets += int(row["packets"])
            incident.bytes += int(row["bytes"])
            incident.max_score = max(incident.max_score, float(row["max_score"]))
            for peer in row["peers"]:
                if len(incident.peers) >= PEERS_KEPT:
                    incident.peers_capped = True
                    break
                incident.peers.add(peer)
            tens_of, minutes_of = counts.get(name, ({}, {}))
            for bucket, n in tens_of.items():
                incident.per_10s[bucket] = incident.per_10s.get(bucket, 0) + n
            for bucket, n in minutes_of.items():
                incident.per_minute[bucket] = incident.per_minute.get(bucket, 0) + n
            _trim(incident)
            key = (incident.cls, incident.anchor)
            current = self._open.get(key)
            if current is None or self.incidents[current].last_seen <= incident.last_seen:
                self._open[key] = name
        return touched

    def _close_quiet(self, events: list[IncidentEvent]) -> list[IncidentEvent]:
        """Close every open incident quiet for `quiet_seconds` of flow time."""
        if self.clock is None:
            return events
        cut = self.clock - self.quiet
        for incident in self.incidents.values():
            if not incident.closed and incident.last_seen < cut:
                events.append(IncidentEvent("close", self.close(incident)))
        return events

    def close(self, incident: Incident) -> dict:
        incident.closed = True
        key = (incident.cls, incident.anchor)
        if self._open.get(key) == incident.id:
            del self._open[key]
        return incident.row()

    def close_all(self) -> list[IncidentEvent]:
        """End of input (a batch command): every open incident closes."""
        return [IncidentEvent("close", self.close(i)) for i in self.incidents.values() if not i.closed]

    def forget(self, before: datetime) -> None:
        """Drop closed incidents whose last flow is older than `before` (the live view keeps
        what it retains, not every incident since start)."""
        for name in [n for n, i in self.incidents.items() if i.closed and i.last_seen < before]:
            del self.incidents[name]

    # ---- across restarts (the headless watcher's exactly-once incident events) -----------

    def to_state(self) -> str:
        """The open incidents and the clock as JSON (closed ones were already reported)."""
        def one(i: Incident) -> dict:
            return {
                "id": i.id, "cls": i.cls, "anchor": i.anchor, "client": i.anchor_is_client,
                "first": i.first_seen.isoformat(), "last": i.last_seen.isoformat(),
                "flows": i.flows, "packets": i.packets, "bytes": i.bytes, "max_score": i.max_score,
                "peers": sorted(i.peers), "capped": i.peers_capped,
                "per_10s": [[b, n] for b, n in i.per_10s.items()],
                "per_minute": [[b, n] for b, n in i.per_minute.items()],
            }
        return json.dumps({
            "clock": self.clock.isoformat() if self.clock else None,
            "open": [one(i) for i in self.incidents.values() if not i.closed],
        })

    def restore(self, state: str) -> None:
        """Continue from to_state(): the same events follow as if the run had not stopped."""
        data = json.loads(state)
        self.clock = datetime.fromisoformat(data["clock"]) if data.get("clock") else None
        for d in data.get("open", []):
            incident = Incident(
                d["id"], d["cls"], d["anchor"], bool(d["client"]), datetime.fromisoformat(d["first"]),
                datetime.fromisoformat(d["last"]), d["flows"], d["packets"], d["bytes"],
                float(d["max_score"]), set(d["peers"]), bool(d["capped"]),
                {int(b): int(n) for b, n in d["per_10s"]}, {int(b): int(n) for b, n in d["per_minute"]},
            )
            self.incidents[incident.id] = incident
            self._open[(incident.cls, incident.anchor)] = incident.id

    # ---- views -------------------------------------------------------------------------

    def table(self, ids: Iterable[str] | None = None) -> pl.DataFrame:
        """One row per incident (INCIDENT_SCHEMA), most severe and most recent first."""
        chosen = self.incidents.values() if ids is None else [self.incidents[i] for i in ids]
        schema = {k: v for k, v in INCIDENT_SCHEMA.items() if k != "rank"}
        return sort_incidents(pl.DataFrame([i.row() for i in chosen], schema=schema))


def sort_incidents(frame: pl.DataFrame) -> pl.DataFrame:
    """Open before closed, then the highest score (to the hundredth), then the latest; `rank`
    numbers that order (0 = most severe and most recent), for views that sort by it."""
    return frame.sort(
        [pl.col("state") == "open", pl.col("max_score").round(2), "last_seen", "incident"],
        descending=[True, True, True, False],
    ).with_row_index("rank").with_columns(pl.col("rank").cast(pl.Int64))


def _trim(incident: Incident) -> None:
    """Keep the per-10 s and per-minute counts bounded: the peak is kept, old buckets go."""
    if len(incident.per_minute) > 4 * SPARK_MINUTES:
        newest = max(incident.per_minute)
        incident.per_minute = {b: n for b, n in incident.per_minute.items() if b > newest - SPARK_MINUTES}
    if len(incident.per_10s) > 64:
        peak = max(incident.per_10s.values())
        newest = max(incident.per_10s)
        kept = {b: n for b, n in incident.per_10s.items() if b > newest - 12}
        if max(kept.values(), default=0) < peak:
            kept[min(incident.per_10s) - 1] = peak  # the peak survives as an old bucket
        incident.per_10s = kept
