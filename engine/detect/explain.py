"""Why a flow got its verdict, kept from scoring time and said in plain words.

At scoring time (engine.detect.detector.Detector.score with detail=True) each flow gets `why`:
a small JSON object with the class probabilities the verdict came from and the features that
drove it, each with its value and where that value sits among the training's normal flows
(a percentile). The drill-down shows this, never a recomputation: window context is only
kept for a minute, and a flow explained later on less context would get another verdict.

Drivers: the features the classifier leans on most (its feature importances) weighted by how
far this flow's value is from normal traffic (|percentile - 50|), the strongest three.
"""

from __future__ import annotations

import json
import math
import weakref
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from engine.detect.detector import Detector

DRIVERS = 3

_PROFILES: weakref.WeakKeyDictionary[Any, tuple[list[np.ndarray], np.ndarray, np.ndarray]] = (
    weakref.WeakKeyDictionary()
)

_SCOPES = {
    "c10s": "this client in 10 s", "c60s": "this client in 60 s",
    "s10s": "its server in 10 s", "s60s": "its server in 60 s",
    "p10s": "this client-server pair in 10 s", "p60s": "this client-server pair in 60 s",
    "v": "this conversation (client socket and server)", "peer10s": "the peer in 10 s",
}
_MEASURES = {
    "flows": "flows", "packets": "packets", "bytes": "bytes", "peers": "distinct peers",
    "ports": "distinct client ports", "port_reuse": "port reuse", "ans_q": "answer/query bytes",
    "ans_share": "share of answers", "tiny_share": "share of tiny flows (40 B or less)",
    "tcp_share": "share over TCP", "other_share": "share that is not DNS",
    "q_bpp": "bytes per query packet", "a_bpp": "bytes per answer packet",
    "unreach": "ICMP unreachable errors per answer", "a_cv": "spread of answer sizes",
    "share_of_server": "share of its server's flows", "share_of_client": "share of its client's flows",
    "span": "seconds it lasted", "gap": "seconds between its flows", "servers": "servers",
    "a_vs_pair": "answer size against the pair's", "q_vs_pair": "query size against the pair's",
    "share_of_pair": "share of the pair's flows",
}
_FLOW = {
    "log_duration": "seconds this flow lasted", "log_packets": "packets in this flow",
    "log_bytes": "bytes in this flow", "log_pps": "packets per second", "log_bps": "bytes per second",
    "log_bpp": "bytes per packet", "log_flows": "flows aggregated in this record",
    "tiny": "a tiny flow (40 B or less)", "icmp_unreach": "an ICMP unreachable error",
    "role_query": "a query to port 53", "role_answer": "an answer from port 53",
    "proto_tcp": "over TCP", "proto_udp": "over UDP", "proto_icmp": "ICMP",
    "flag_syn": "SYN flag", "flag_ack": "ACK flag", "flag_rst": "RST flag", "flag_fin": "FIN flag",
    "burst_client": "burstiness of this client", "burst_pair": "burstiness of this pair",
}
_COUNTED = ("flows", "packets", "bytes", "peers", "ports", "q_bpp", "a_bpp", "span", "gap", "servers")


def describe(feature: str) -> str:
    """A feature name in words: "c10s_flows" -> "flows of this client in 10 s"."""
    if feature in _FLOW:
        return _FLOW[feature]
    scope, _, measure = feature.partition("_")
    if scope in _SCOPES and measure in _MEASURES:
        return f"{_MEASURES[measure]} of {_SCOPES[scope]}"
    return feature


def natural(feature: str, value: float) -> float:
    """A feature's value in its own unit: counts and sizes are kept as log1p, ratios as log."""
    if feature.startswith("log_") or feature.endswith(_COUNTED):
        return math.expm1(value)
    if feature.endswith("ans_q"):
        return math.exp(value)
    return value


def _shown(feature: str, value: float) -> str:
    v = natural(feature, value)
    if "share" in feature or feature.endswith("unreach"):
        return f"{v:.0%}" if 0.0 <= v <= 1.0 else f"{v:.3g}"
    if feature in _FLOW and not feature.startswith("log_"):
        return "yes" if v >= 0.5 else "no"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.3g}"


def normal_profile(detector: Detector) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Per feature, the sorted values of the training's normal flows (the detector's labelled
    reference rows, back in feature units), their medians, and the classifier's feature
    importances."""
    cached = _PROFILES.get(detector)
    if cached is not None:
        return cached
    labels = np.asarray(detector.reference_labels_)
    raw = detector.scaler_.inverse_transform(detector.reference_X_)
    normal = raw[labels == "normal"] if (labels == "normal").any() else raw
    columns = [np.sort(normal[:, j]) for j in range(normal.shape[1])]
    medians = np.array([float(np.median(c)) if len(c) else 0.0 for c in columns])
    if detector.classifier in ("forest", "extratrees"):  # tree ensembles rank their features
        weights = np.asarray(detector.model_.feature_importances_, dtype=np.float64)
    else:  # kNN weighs every feature alike
        weights = np.ones(len(columns))
    _PROFILES[detector] = (columns, medians, weights)
    return columns, medians, weights


def why_of(detector: Detector, X: np.ndarray, proba: np.ndarray) -> list[str]:
    """The `why` JSON of each row of X (feature rows) with its class probabilities."""
    columns, medians, weights = normal_profile(detector)
    names = list(detector.feature_names_)
    pct = np.empty(X.shape, dtype=np.float64)
    for j, ref in enumerate(columns):
        if len(ref) == 0:
            pct[:, j] = 0.5
            continue
        low = np.searchsorted(ref, X[:, j], side="left")
        high = np.searchsorted(ref, X[:, j], side="right")
        pct[:, j] = (low + high) / (2.0 * len(ref))
    strength = weights[None, :] * np.abs(pct - 0.5)
    top = np.argpartition(-strength, DRIVERS - 1, axis=1)[:, :DRIVERS] if X.shape[1] > DRIVERS else \
        np.tile(np.arange(X.shape[1]), (len(X), 1))
    # strongest first within the three
    top = np.take_along_axis(top, np.argsort(-np.take_along_axis(strength, top, axis=1), axis=1), axis=1)
    likely = np.argsort(-proba, axis=1)[:, :3]
    classes = list(detector.classes_)
    rows = np.arange(len(X))[:, None]
    values, shares = np.round(X[rows, top], 4).tolist(), np.round(pct[rows, top] * 100, 1).tolist()
    chances = np.round(np.take_along_axis(proba, likely, axis=1), 3).tolist()
    normal = np.round(medians, 4).tolist()
    top_l, likely_l = top.tolist(), likely.tolist()
    out = []
    for i in range(len(X)):  # plain Python from here: lists, not arrays (this runs per batch)
        out.append(json.dumps({
            "p": {classes[k]: p for k, p in zip(likely_l[i], chances[i], strict=True)},
            "d": [[names[j], v, q, normal[j]] for j, v, q in zip(top_l[i], values[i], shares[i], strict=True)],
        }, separators=(",", ":")))
    return out


def sentences(why: str | None) -> list[str]:
    """Plain sentences for a `why` JSON: each driver against normal traffic."""
    if not why:
        return []
    data = json.loads(why)
    said = []
    for feature, value, pct, median in data.get("d", []):
        if pct >= 100:
            where = "above every normal flow in training"
        elif pct <= 0:
            where = "below every normal flow in training"
        elif pct >= 50:
            where = f"above {min(pct, 99.9):.3g}% of normal flows"
        else:
            where = f"below {min(100 - pct, 99.9):.3g}% of normal flows"
        said.append(f"{describe(feature)}: {_shown(feature, value)} "
                    f"(normal {_shown(feature, median)}; {where})")
    return said


def probabilities(why: str | None) -> dict[str, float]:
    return dict(json.loads(why).get("p", {})) if why else {}
