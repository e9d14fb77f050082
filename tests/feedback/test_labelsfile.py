"""Labels files: both key sets, name normalisation, precision, duplicates, vocabulary errors."""

import bz2
from datetime import datetime

import polars as pl
import pytest
import zstandard

from engine.core.errors import UserError
from engine.core.schema import FLOW_SCHEMA
from engine.feedback.labelsfile import join_labels, read_labels
from tests.conftest import ROOT

BUNDLED = ROOT / "data/samples/lab-dev/routerlike-labels.csv.gz"


def _flows(**columns) -> pl.DataFrame:
    n = len(next(iter(columns.values())))
    defaults = {
        "ts_first": [datetime(2027, 1, 11, 1, 38, 18, 706000)] * n,
        "src_addr": ["127.10.66.7"] * n,
        "src_port": [33428] * n,
        "dst_addr": ["127.10.1.53"] * n,
        "dst_port": [53] * n,
        "proto": ["UDP"] * n,
        "file": ["nfcapd.202701110138.txt"] * n,
        "line": list(range(2, n + 2)),
    }
    defaults.update(columns)
    return pl.DataFrame(defaults).with_columns(
        pl.col(c).cast(FLOW_SCHEMA[c]) for c in defaults
    )


def test_bundled_labels_join_to_flows_read_from_compressed_paths():
    labels = read_labels(BUNDLED)
    assert labels.columns == ["file", "line", "label"]
    flows = _flows(
        file=[
            "/x/y/nfcapd.202701110138.txt.gz",
            "data/nfcapd.202701110138.txt.zst",
            "nfcapd.202701110138.txt",
            "nfcapd.209912312359.txt",
        ],
        line=[2, 3, 4, 2],
    )
    # The first rows of the bundled file: line 2 tunnel, 3 tunnel, 4 normal.
    assert join_labels(flows, labels).to_list() == ["tunnel", "tunnel", "normal", None]


def test_labels_may_name_the_dump_without_its_text_extension(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("file,line,label\nnfcapd.202701110138,3,scan\n")
    flows = _flows(file=["/d/nfcapd.202701110138.txt.gz", "/d/nfcapd.202701110138.txt.gz"], line=[2, 3])
    assert join_labels(flows, read_labels(path)).to_list() == [None, "scan"]


def test_an_ambiguous_name_without_extension_matches_nothing(tmp_path):
    # The same capture dumped as .txt and .csv has different line numbers: do not guess.
    path = tmp_path / "labels.csv"
    path.write_text("file,line,label\nnfcapd.1,2,scan\n")
    flows = _flows(file=["nfcapd.1.txt", "nfcapd.1.csv"], line=[2, 2])
    assert join_labels(flows, read_labels(path)).to_list() == [None, None]


def test_duplicate_keys_last_row_wins(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text(
        "file,line,label\nd.txt,2,normal\nd.txt,2,tunnel\nd.txt,3,scan\n"
    )
    labels = read_labels(path)
    assert labels.height == 2
    assert join_labels(_flows(file=["d.txt", "d.txt"], line=[2, 3]), labels).to_list() == [
        "tunnel",
        "scan",
    ]


def test_flow_key_joins_at_millisecond_or_second_precision(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text(
        "ts_first,src_addr,src_port,dst_addr,dst_port,proto,label\n"
        "2027-01-11 01:38:18.706,127.10.66.7,33428,127.10.1.53,53,UDP,dns_flood\n"
        "2027-01-11 01:38:19,127.10.66.7,33429,127.10.1.53,53,17,tunnel\n"
        "2027-01-11T01:38:20.5,127.10.66.7,33430,127.10.1.53,53,udp,scan\n"
    )
    labels = read_labels(path)
    flows = _flows(
        ts_first=[
            datetime(2027, 1, 11, 1, 38, 18, 706000),
            datetime(2027, 1, 11, 1, 38, 19, 999000),  # second precision: any ms matches
            datetime(2027, 1, 11, 1, 38, 20, 500000),
            datetime(2027, 1, 11, 1, 38, 20, 501000),  # ms precision: must be exact
            datetime(2027, 1, 11, 1, 38, 18, 707000),
        ],
        src_port=[33428, 33429, 33430, 33430, 33428],
    )
    assert join_labels(flows, labels).to_list() == ["dns_flood", "tunnel", "scan", None, None]


def test_flow_key_protocols_match_by_number_or_name_in_any_case(tmp_path):
    path = tmp_path / "labels.csv"
    rows = [("41", "scan"), ("ipv6", "tunnel"), ("ax.25", "scan"), ("TRNK1", "tunnel"), ("8", "scan")]
    path.write_text(
        "ts_first,src_addr,src_port,dst_addr,dst_port,proto,label\n"
        + "".join(
            f"2027-01-11 01:38:18.706,127.10.66.7,{33428 + i},127.10.1.53,53,{proto},{label}\n"
            for i, (proto, label) in enumerate(rows)
        )
    )
    flows = _flows(
        src_port=[33428 + i for i in range(5)], proto=["IPv6", "IPv6", "AX.25", "Trnk1", "EGP"]
    )
    assert join_labels(flows, read_labels(path)).to_list() == [label for _, label in rows]


def test_provenance_wins_when_a_file_has_both_keys(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text(
        "file,line,ts_first,src_addr,src_port,dst_addr,dst_port,proto,label\n"
        "d.txt,2,2000-01-01 00:00:00,1.1.1.1,1,2.2.2.2,2,UDP,scan\n"
    )
    assert join_labels(_flows(file=["d.txt"], line=[2]), read_labels(path)).to_list() == ["scan"]


@pytest.mark.parametrize("suffix", [".bz2", ".zst"])
def test_compressed_labels_files(tmp_path, suffix):
    text = b"file,line,label\nd.txt,2,zero_packet\n"
    data = bz2.compress(text) if suffix == ".bz2" else zstandard.ZstdCompressor().compress(text)
    path = tmp_path / f"labels.csv{suffix}"
    path.write_bytes(data)
    assert read_labels(path)["label"].to_list() == ["zero_packet"]


def test_no_usable_key_names_the_file(tmp_path):
    path = tmp_path / "truth.csv"
    path.write_text("flow,label\n1,normal\n")
    with pytest.raises(UserError, match=r"truth\.csv: .*either 'file, line' or 'ts_first"):
        read_labels(path)


def test_labels_outside_the_vocabulary_are_reported(tmp_path):
    path = tmp_path / "truth.csv"
    path.write_text("file,line,label\nd,2,normal\nd,3,dnsflood\nd,4,dnsflood\nd,5,malware\n")
    with pytest.raises(UserError) as err:
        read_labels(path)
    message = str(err.value)
    assert "truth.csv: 3 row(s) with labels outside the vocabulary" in message
    assert "'dnsflood' x2 (first at line 3)" in message and "'malware' x1 (first at line 5)" in message
    assert read_labels(path, extra_classes=("dnsflood", "malware")).height == 4


def test_bad_line_numbers_are_reported_with_their_row(tmp_path):
    path = tmp_path / "truth.csv"
    path.write_text("file,line,label\nd,2,normal\nd,two,scan\n")
    with pytest.raises(UserError, match=r"truth\.csv: 1 row\(s\) with a bad 'line' number \(line 3\)"):
        read_labels(path)


def test_empty_labels_are_ignored_and_missing_file_is_a_user_error(tmp_path):
    path = tmp_path / "truth.csv"
    path.write_text("file,line,label\nd,2,\nd,3,scan\n")
    assert read_labels(path)["line"].to_list() == [3]
    with pytest.raises(UserError, match="no such labels file"):
        read_labels(tmp_path / "nope.csv")


def test_several_labels_files_later_wins(tmp_path):
    from engine.feedback.labelsfile import join_many

    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_text("file,line,label\nd.txt,2,scan\nd.txt,3,tunnel\n")
    second.write_text(
        "ts_first,src_addr,src_port,dst_addr,dst_port,proto,label\n"
        "2027-01-11 01:38:18.706,127.10.66.7,33428,127.10.1.53,53,UDP,dns_flood\n"
    )
    flows = _flows(file=["d.txt", "d.txt", "d.txt"], line=[2, 3, 4], src_port=[1, 33428, 2])
    joined = join_many(flows, [read_labels(first), read_labels(second)])
    assert joined.to_list() == ["scan", "dns_flood", None]
    assert join_many(flows, []).to_list() == [None, None, None]
