"""nfdump filter syntax, compiled to a boolean polars expression over the canonical flow columns.

`compile_filter(text)` is the one entry point: it tokenises, parses into a small AST (the
dataclasses below) and lowers the AST to a `pl.Expr`. A filter that cannot be parsed raises
`FilterError` at compile time, with the 0-based character position and what was expected there,
so the config loader and the TUI filter bar can point at the mistake.

Hand-written recursive descent rather than a parser library: the grammar is small, lark or
pyparsing would be a new dependency, and a hand parser gives error messages in nfdump's terms
("expected a number after 'packets >'") instead of a generic "unexpected token".

Semantics follow nfdump 1.7 (src/libnfdump/filter: grammar.y, scanner.l, filter.c):
- precedence not > and > or; keywords case-insensitive; `#` starts a comment;
- a comparator defaults to `==`; numbers take k/m/g/t suffixes scaled by 1000, or 0x hex;
- `duration` is in milliseconds; pps = 1000*packets/duration_ms, bps = 8000*bytes/duration_ms
  (0 when the duration is 0), bpp = bytes/packets (0 when there are no packets), all truncated
  to whole numbers before comparing, as nfdump does;
- `flags XYZ` is true when every named flag is set (others don't care);
- `port N` / `ip A` / `net N` without src/dst match either side.
Extensions nfdump does not accept: `=>` (the field talk writes it) as `>=`, `&&`/`||`, flag
letters C and E, lower-case flag letters, `proto` with IANA keywords (ipv6-icmp, udplite, ...)
or with the protocol names nfdump prints but its filter refuses (tp++, ipv6, xnet, host, net,
mpls).

Addresses are compared as printed. An IPv6 address nfdump shortened with `..` in a text dump
cannot be recovered, so such a flow never matches an IPv6 `ip`/`net` filter (IPv4 is never
shortened).
"""

from __future__ import annotations

import difflib
import ipaddress
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import reduce

import polars as pl

from engine.core.schema import PROTO_NAMES, TCP_FLAG_LETTERS

__all__ = ["FilterError", "compile_filter", "format_filter", "parse_filter"]


class FilterError(ValueError):
    """A filter that cannot be compiled.

    `position` is the 0-based character offset of the offending token (len(text) at the end),
    `expected` says what would have been valid there, `reason` is a one-line summary, and the
    message (str(err)) adds the filter line with a caret under the position.
    """

    def __init__(self, reason: str, *, text: str, position: int, expected: str) -> None:
        self.reason = reason
        self.text = text
        self.position = position
        self.expected = expected
        self.message = _render(reason, text, position)
        super().__init__(self.message)


def _render(reason: str, text: str, position: int) -> str:
    # Show only the line holding the position: filters read from a file may span lines.
    start = text.rfind("\n", 0, position) + 1
    end = text.find("\n", position)
    line = text[start : end if end >= 0 else len(text)]
    caret = " " * (position - start) + "^"
    return f"{reason} (at position {position})\n  {line}\n  {caret}"


# ---------------------------------------------------------------------------------------------
# Tokens

@dataclass(frozen=True)
class Token:
    kind: str  # word, cmp, and, or, not, ( ) [ ] , /, end
    text: str
    pos: int

    @property
    def word(self) -> str:
        return self.text.lower() if self.kind == "word" else ""


_TOKEN = re.compile(
    r"""
    (?P<ws>\s+|\#[^\n]*)
    | (?P<bad>!=|<>)
    | (?P<cmp>>=|<=|=>|==|=|>|<)
    | (?P<and>&&)
    | (?P<or>\|\|)
    | (?P<not>!)
    | (?P<punct>[()\[\],/])
    | (?P<word>[A-Za-z0-9_:.\-+]+)
    """,
    re.VERBOSE,
)


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise FilterError(
                f"unexpected character {text[pos]!r}",
                text=text,
                position=pos,
                expected="a keyword, a value, a comparator, 'and', 'or', 'not' or a parenthesis",
            )
        kind = m.lastgroup
        if kind == "bad":
            raise FilterError(
                f"{m.group()!r} is not an nfdump comparator",
                text=text,
                position=pos,
                expected="one of = == > < >= <= (negate with 'not')",
            )
        if kind == "punct":  # a bracket, comma or slash is its own kind
            tokens.append(Token(m.group(), m.group(), pos))
        elif kind != "ws":
            tokens.append(Token(str(kind), m.group(), pos))
        pos = m.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


# ---------------------------------------------------------------------------------------------
# AST

@dataclass(frozen=True)
class Any:
    pass


@dataclass(frozen=True)
class Not:
    child: Node


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Compare:
    field: str  # a key of _FIELDS
    op: str  # one of _OPS
    value: int


@dataclass(frozen=True)
class PortIn:
    column: str
    ports: tuple[int, ...]


@dataclass(frozen=True)
class Proto:
    number: int


@dataclass(frozen=True)
class Address:
    column: str  # src_addr or dst_addr
    network: ipaddress.IPv4Network | ipaddress.IPv6Network  # a host is a /32 or /128


@dataclass(frozen=True)
class Flags:
    mask: int  # every bit in mask must be set


@dataclass(frozen=True)
class Family:
    version: int  # 4 or 6


Node = Any | Not | And | Or | Compare | PortIn | Proto | Address | Flags | Family


# ---------------------------------------------------------------------------------------------
# Vocabulary

_CMP_WORDS = {"eq": "==", "gt": ">", "lt": "<", "ge": ">=", "le": "<="}
_CMP_SYMBOLS = {"=": "==", "==": "==", ">": ">", "<": "<", ">=": ">=", "<=": "<=", "=>": ">="}

# Every name nfdump prints (engine.core.schema.PROTO_NAMES), read as the first number printed with
# it, as nfdump's filter reads it (`proto idpr` is 35, not 38), so a flow matches whether
# printed by name or number; plus IANA keywords nfdump does not print. A/N (107) is no word
# here ('/' separates a prefix length): `proto 107`.
PROTO_NUMBERS: dict[str, int] = {
    **{name.lower(): n for n, name in reversed(PROTO_NAMES.items())},
    "hopopt": 0, "ipv4": 4, "idp": 22, "tp": 29, "ipv6-route": 43, "ipv6-frag": 44,
    "ipv6-icmp": 58, "ipv6-nonxt": 59, "ipv6-opts": 60, "ipcomp": 108, "isis": 124,
    "udplite": 136,
}
# Protocol names nfdump's filter refuses after `proto` (its own keywords; TP++ and A/N, which
# its scanner splits): format_filter prints their numbers, so its text suits nfdump as well.
_NFDUMP_REFUSES = frozenset({"xnet", "ipv6", "host", "net", "mpls", "tp++", "a/n"})

_TCP_FLAG_BITS = {letter: 1 << (7 - i) for i, letter in enumerate(TCP_FLAG_LETTERS)}
_ALL_FLAGS = 0x3F  # nfdump's X: URG ACK PSH RST SYN FIN

_COUNTERS = ("packets", "bytes", "flows", "duration", "pps", "bps", "bpp")

# nfdump primitives over fields the canonical flow columns do not carry.
_UNSUPPORTED = {
    "as", "if", "vlan", "mac", "mpls", "mask", "router", "next", "prev", "bgp", "engine",
    "engine-type", "engine-id", "exporter", "ident", "count", "icmp-type", "icmp-code", "icmp",
    "geo", "nat", "xlate", "tun", "ingress", "egress", "flowdir", "latency", "asa", "acl",
    "payload", "vrf", "pf", "observation", "fwdstat", "in", "out", "min", "max", "ttl", "ipttl",
    "ethertype", "client", "server", "@include",
}

_PRIMITIVES = (
    "any, proto, ip/host, net, port, packets, bytes, flows, duration, pps, bps, bpp, flags, tos, "
    "ipv4/ipv6, not, '('"
)

_KEYWORDS = (
    "any", "proto", "ip", "host", "net", "port", "src", "dst", "tos", "flags", "ipv4", "ipv6",
    "inet", "inet6", "not", "and", "or", *_COUNTERS,
)

MAX_DEPTH = 100

_NUMBER = re.compile(r"^(?:(\d+)([kmgt]?)|0x([0-9a-f]+))$", re.IGNORECASE)
_SCALE = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}


# ---------------------------------------------------------------------------------------------
# Parser

class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.start = 0  # position where the current primitive began, for "after '...'" context
        self.depth = 0  # open parentheses and nots

    # -- token helpers

    def peek(self, k: int = 0) -> Token:
        return self.tokens[min(self.i + k, len(self.tokens) - 1)]

    def take(self) -> Token:
        tok = self.peek()
        self.i = min(self.i + 1, len(self.tokens) - 1)
        return tok

    def context(self) -> str:
        prev = self.tokens[self.i - 1] if self.i else None
        end = prev.pos + len(prev.text) if prev else 0
        return " ".join(self.text[self.start : end].split())

    def fail(self, tok: Token, reason: str, expected: str) -> FilterError:
        return FilterError(reason, text=self.text, position=tok.pos, expected=expected)

    def fail_expected(self, expected: str, detail: str = "") -> FilterError:
        tok = self.peek()
        after = self.context()
        found = "end of filter" if tok.kind == "end" else repr(tok.text)
        reason = f"expected {expected}" + (f" after {after!r}" if after else "") + f", found {found}"
        return self.fail(tok, reason, f"{expected} ({detail})" if detail else expected)

    # -- expressions: or > and > not

    def parse(self) -> Node:
        if self.peek().kind == "end":
            return Any()
        node = self.or_expr()
        tok = self.peek()
        if tok.kind == ")":
            raise self.fail(tok, "unbalanced ')'", "'and', 'or' or the end of the filter")
        if tok.kind != "end":
            raise self.fail(
                tok,
                f"unexpected {tok.text!r} after a complete primitive (join primitives with 'and' or 'or')",
                "'and', 'or' or the end of the filter",
            )
        return node

    def is_or(self) -> bool:
        tok = self.peek()
        return tok.kind == "or" or tok.word == "or"

    def is_and(self) -> bool:
        tok = self.peek()
        return tok.kind == "and" or tok.word == "and"

    def or_expr(self) -> Node:
        children = [self.and_expr()]
        while self.is_or():
            self.start = self.take().pos
            children.append(self.and_expr())
        return _either(Or, children)

    def and_expr(self) -> Node:
        children = [self.unary()]
        while self.is_and():
            self.start = self.take().pos
            children.append(self.unary())
        return _either(And, children)

    def nest(self, tok: Token) -> None:
        # Python recursion is the parse stack; refuse absurd nesting before it overflows.
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail(tok, f"filter nests deeper than {MAX_DEPTH} levels", "a shallower filter")

    def unary(self) -> Node:
        tok = self.peek()
        if tok.kind == "not" or tok.word == "not":
            self.nest(tok)
            self.start = self.take().pos
            node = Not(self.unary())
            self.depth -= 1
            return node
        return self.primary()

    def primary(self) -> Node:
        tok = self.peek()
        if tok.kind == "(":
            self.nest(tok)
            self.take()
            node = self.or_expr()
            self.depth -= 1
            close = self.peek()
            if close.kind != ")":
                self.start = tok.pos
                raise self.fail(
                    close,
                    f"unbalanced '(' opened at position {tok.pos}: expected ')' or 'and'/'or', "
                    f"found {'end of filter' if close.kind == 'end' else repr(close.text)}",
                    "')'",
                )
            self.take()
            return node
        if tok.kind == ")":
            raise self.fail(tok, "unbalanced ')'", f"a filter primitive ({_PRIMITIVES})")
        if tok.kind != "word" or tok.word in ("and", "or"):
            raise self.fail_expected("a filter primitive", _PRIMITIVES)
        self.start = tok.pos
        return self.primitive()

    # -- primitives

    def primitive(self) -> Node:
        tok = self.take()
        kw = tok.word
        if kw == "any":
            return Any()
        if kw in ("ipv4", "inet"):
            return Family(4)
        if kw in ("ipv6", "inet6"):
            return Family(6)
        sides: tuple[str, ...] = ("src", "dst")
        join: type[And] | type[Or] = Or
        if kw in ("src", "dst"):
            sides = (kw,)
            other = "dst" if kw == "src" else "src"
            # nfdump's "src and dst port 53" / "src or dst ip A": a qualifier, not a boolean
            if self.peek().word in ("and", "or") and self.peek(1).word == other:
                join = And if self.take().word == "and" else Or
                self.take()
                sides = ("src", "dst")
            if self.peek().word not in ("ip", "host", "net", "port", "tos"):
                raise self.fail_expected("ip, host, net, port or tos")
            tok = self.take()
            kw = tok.word
        if kw == "proto":
            return Proto(self.proto())
        if kw in ("ip", "host"):
            if self.peek().word == "in":
                self.take()
                nets = self.address_list()
                return _either(join, [_either(Or, [Address(f"{s}_addr", n) for n in nets]) for s in sides])
            net = self.address()
            return _either(join, [Address(f"{s}_addr", net) for s in sides])
        if kw == "net":
            net = self.network()
            return _either(join, [Address(f"{s}_addr", net) for s in sides])
        if kw == "port":
            if self.peek().word == "in":
                self.take()
                ports = self.number_list(0, 65535, "port")
                return _either(join, [PortIn(f"{s}_port", ports) for s in sides])
            op = self.comparator()
            port = self.number(0, 65535, "port")
            return _either(join, [Compare(f"{s}_port", op, port) for s in sides])
        if kw == "tos":
            if sides == ("dst",):
                raise self.fail(tok, "'dst tos' is not available: flows carry the source tos only", "tos")
            op = self.comparator()
            return Compare("tos", op, self.number(0, 255, "tos"))
        if kw in _COUNTERS:
            op = self.comparator()
            return Compare(kw, op, self.number())
        if kw == "flags":
            return self.flags()
        if kw in _UNSUPPORTED:
            raise self.fail(
                tok,
                f"nfdump keyword {tok.text!r} is not supported: flows carry no such field",
                f"a filter primitive ({_PRIMITIVES})",
            )
        close = difflib.get_close_matches(kw, _KEYWORDS, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise self.fail(tok, f"unknown keyword {tok.text!r}{hint}", f"a filter primitive ({_PRIMITIVES})")

    def comparator(self) -> str:
        tok = self.peek()
        if tok.kind == "cmp":
            self.take()
            return _CMP_SYMBOLS[tok.text]
        if tok.word in _CMP_WORDS:
            self.take()
            return _CMP_WORDS[tok.word]
        return "=="

    def number(self, low: int = 0, high: int = 2**63 - 1, what: str = "value") -> int:
        tok = self.peek()
        m = _NUMBER.match(tok.text) if tok.kind == "word" else None
        if m is None:
            raise self.fail_expected("a number")
        self.take()
        if m.group(3) is not None:
            value = int(m.group(3), 16)
        else:
            value = int(m.group(1)) * _SCALE[m.group(2).lower()]
        if not low <= value <= high:
            raise self.fail(tok, f"{what} {tok.text} is outside {low}..{high}", f"a number in {low}..{high}")
        return value

    def number_list(self, low: int, high: int, what: str) -> tuple[int, ...]:
        self.expect("[")
        values = [self.number(low, high, what)]
        while self.peek().kind != "]":
            if self.peek().kind == ",":
                self.take()
            if self.peek().kind == "end":
                raise self.fail_expected("']'")
            values.append(self.number(low, high, what))
        self.take()
        return tuple(values)

    def expect(self, kind: str) -> Token:
        if self.peek().kind != kind:
            raise self.fail_expected(repr(kind))
        return self.take()

    def proto(self) -> int:
        tok = self.peek()
        if tok.kind != "word":
            raise self.fail_expected("a protocol name or number")
        if _NUMBER.match(tok.text):
            return self.number(0, 255, "protocol")
        self.take()
        if tok.word not in PROTO_NUMBERS:
            raise self.fail(
                tok, f"unknown protocol {tok.text!r}", "a protocol number or name (tcp, udp, icmp, icmp6, gre, esp, ...)"
            )
        return PROTO_NUMBERS[tok.word]

    def address(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        tok = self.peek()
        if tok.kind != "word":
            raise self.fail_expected("an IP address")
        try:
            addr = ipaddress.ip_address(tok.text)
        except ValueError:
            raise self.fail(
                tok,
                f"expected an IP address after {self.context()!r}, found {tok.text!r} "
                "(host names are not resolved)",
                "an IPv4 or IPv6 address",
            ) from None
        self.take()
        return ipaddress.ip_network(addr)

    def network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        base = self.address().network_address
        tok = self.peek()
        if tok.kind == "/":
            self.take()
            bits = self.number(0, base.max_prefixlen, "prefix length")
            return ipaddress.ip_network(f"{base}/{bits}", strict=False)
        if tok.kind == "word" and base.version == 4 and "." in tok.text:
            try:
                net = ipaddress.ip_network(f"{base}/{tok.text}", strict=False)
            except ValueError:
                raise self.fail(tok, f"invalid netmask {tok.text!r}", "a contiguous netmask such as 255.255.0.0") from None
            self.take()
            return net
        raise self.fail_expected("'/bits' or a netmask")

    def address_list(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        self.expect("[")
        nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        while True:
            if self.peek().kind == ",":
                self.take()
            if self.peek().kind == "]" and nets:
                self.take()
                return nets
            if self.peek().kind == "end":
                raise self.fail_expected("']'")
            base = self.address().network_address
            if self.peek().kind == "/":
                self.take()
                bits = self.number(0, base.max_prefixlen, "prefix length")
                nets.append(ipaddress.ip_network(f"{base}/{bits}", strict=False))
            else:
                nets.append(ipaddress.ip_network(base))

    def flags(self) -> Node:
        tok = self.peek()
        if tok.kind == "cmp" or tok.word in _CMP_WORDS or _NUMBER.match(tok.text or "-"):
            op = self.comparator()
            return Compare("flags", op, self.number(0, 255, "flags"))
        if tok.kind != "word":
            raise self.fail_expected("TCP flag letters (A S F R P U X) or a number")
        mask = 0
        for offset, letter in enumerate(tok.text.upper()):
            if letter == "X":
                mask |= _ALL_FLAGS
            elif letter in _TCP_FLAG_BITS:
                mask |= _TCP_FLAG_BITS[letter]
            else:
                raise FilterError(
                    f"unknown TCP flag {tok.text[offset]!r}",
                    text=self.text,
                    position=tok.pos + offset,
                    expected="TCP flag letters A S F R P U C E or X (all)",
                )
        self.take()
        return Flags(mask)


def _either(join: type[And] | type[Or], nodes: list[Node]) -> Node:
    """One node, or `join` of them with nested joins of the same kind spliced in (a or (b or c)
    is a or b or c), so equal filters give equal ASTs whatever their grouping."""
    if len(nodes) == 1:
        return nodes[0]
    flat: list[Node] = []
    for node in nodes:
        flat.extend(node.children if isinstance(node, join) else (node,))
    return join(tuple(flat))


def parse_filter(text: str) -> Node:
    """Parse nfdump filter text into an AST (raises FilterError)."""
    return _Parser(text).parse()


# ---------------------------------------------------------------------------------------------
# Lowering to polars

def _duration_ms() -> pl.Expr:
    return (pl.col("duration") * 1000).round(0).cast(pl.Int64)


def _per_second(counter: str, factor: int) -> pl.Expr:
    ms = _duration_ms()
    # nfdump divides by the unsigned duration: 0 ms and records that end before they start
    # (a wrapped, huge duration in nfdump) both come out as 0.
    return pl.when(ms > 0).then(pl.col(counter) * factor // ms).otherwise(0)


def _flags_value() -> pl.Expr:
    col = pl.col("tcp_flags")
    return pl.sum_horizontal(
        [(col.str.slice(i, 1) != ".").cast(pl.Int64) * bit for i, bit in enumerate(_TCP_FLAG_BITS.values())]
    )


_FIELDS: dict[str, Callable[[], pl.Expr]] = {
    "packets": lambda: pl.col("packets"),
    "bytes": lambda: pl.col("bytes"),
    "flows": lambda: pl.col("flows"),
    "tos": lambda: pl.col("tos"),
    "src_port": lambda: pl.col("src_port"),
    "dst_port": lambda: pl.col("dst_port"),
    "duration": _duration_ms,
    "pps": lambda: _per_second("packets", 1000),
    "bps": lambda: _per_second("bytes", 8000),
    "bpp": lambda: pl.when(pl.col("packets") > 0).then(pl.col("bytes") // pl.col("packets")).otherwise(0),
    "flags": _flags_value,
}

_OPS: dict[str, Callable[[pl.Expr, int], pl.Expr]] = {
    "==": lambda e, v: e == v,
    ">": lambda e, v: e > v,
    "<": lambda e, v: e < v,
    ">=": lambda e, v: e >= v,
    "<=": lambda e, v: e <= v,
}

def _ipv4_value(column: str) -> pl.Expr:
    """Dotted quad -> integer, vectorised; null for anything else (IPv6, garbage)."""
    # splitn keeps any extra dots in the last part, so "1.2.3.4.5" fails the cast.
    parts = pl.col(column).str.splitn(".", 4)
    octets = [parts.struct.field(f"field_{i}").cast(pl.Int64, strict=False) for i in range(4)]
    valid = pl.all_horizontal([o.is_between(0, 255) for o in octets])
    value = octets[0] * 16777216 + octets[1] * 65536 + octets[2] * 256 + octets[3]
    return pl.when(valid).then(value)


def _ipv4_matcher(low: int, high: int) -> Callable[[pl.Series], pl.Series]:
    # Flow addresses repeat a lot: convert each distinct value once, then look rows up.
    def match(s: pl.Series) -> pl.Series:
        distinct = s.unique().to_frame("a")
        hits = distinct.filter(_ipv4_value("a").is_between(low, high))["a"]
        return s.is_in(hits.implode())

    return match


def _ipv6_matcher(network: ipaddress.IPv6Network) -> Callable[[pl.Series], pl.Series]:
    # Parsing IPv6 text is not vectorisable in polars; parse each distinct value once instead.
    def match(s: pl.Series) -> pl.Series:
        candidates = s.filter(s.str.contains(":", literal=True)).unique().to_list()
        hits = []
        for text in candidates:
            try:
                if ipaddress.IPv6Address(text) in network:
                    hits.append(text)
            except ValueError:  # `..`-shortened or not an address
                continue
        return s.is_in(pl.Series(hits, dtype=pl.String).implode())

    return match


def _address_expr(node: Address) -> pl.Expr:
    net = node.network
    if net.version == 4:
        if net.prefixlen == 32:
            return pl.col(node.column) == str(net.network_address)
        lo, hi = int(net.network_address), int(net.broadcast_address)
        return pl.col(node.column).map_batches(_ipv4_matcher(lo, hi), return_dtype=pl.Boolean, is_elementwise=True)
    return pl.col(node.column).map_batches(_ipv6_matcher(net), return_dtype=pl.Boolean, is_elementwise=True)


def _proto_expr(number: int) -> pl.Expr:
    # Canonical flows print known protocols by name (engine.core.schema.PROTO_NAMES), others by
    # number or by the name nfdump printed; a handful of equalities beats is_in on strings.
    spellings = {str(number)} | {name.upper() for name, n in PROTO_NUMBERS.items() if n == number}
    if number in PROTO_NAMES:
        spellings.add(PROTO_NAMES[number])
    return reduce(operator.or_, [pl.col("proto") == s for s in sorted(spellings)])


def _is_ipv6(column: str) -> pl.Expr:
    return pl.col(column).str.contains(":", literal=True)


def to_expr(node: Node) -> pl.Expr:
    """Lower an AST to a boolean expression; a null field never matches (two-valued logic)."""
    if isinstance(node, Any):
        return pl.lit(True)
    if isinstance(node, Not):
        return ~to_expr(node.child)
    if isinstance(node, And):
        return reduce(operator.and_, [to_expr(c) for c in node.children])
    if isinstance(node, Or):
        return reduce(operator.or_, [to_expr(c) for c in node.children])
    if isinstance(node, Compare):
        leaf = _OPS[node.op](_FIELDS[node.field](), node.value)
    elif isinstance(node, PortIn):
        leaf = pl.col(node.column).is_in(list(node.ports))
    elif isinstance(node, Proto):
        leaf = _proto_expr(node.number)
    elif isinstance(node, Address):
        leaf = _address_expr(node)
    elif isinstance(node, Flags):
        leaf = (_flags_value() & node.mask) == node.mask
    elif isinstance(node, Family):
        both = pl.all_horizontal(_is_ipv6("src_addr"), _is_ipv6("dst_addr"))
        neither = ~pl.any_horizontal(_is_ipv6("src_addr"), _is_ipv6("dst_addr"))
        leaf = both if node.version == 6 else neither & pl.col("src_addr").is_not_null()
    else:  # pragma: no cover - the parser builds only the nodes above
        raise TypeError(f"unknown filter node {node!r}")
    return leaf.fill_null(False)


def compile_filter(text: str) -> pl.Expr:
    """nfdump filter text -> boolean polars expression over FLOW_SCHEMA columns.

    An empty filter matches every flow, as in nfdump. Raises FilterError.
    """
    return to_expr(parse_filter(text))


# ---------------------------------------------------------------------------------------------
# Printing an AST back as nfdump filter text

def _format_address(node: Address) -> str:
    side = node.column.removesuffix("_addr")
    net = node.network
    if net.prefixlen == net.max_prefixlen:
        return f"{side} ip {net.network_address}"
    return f"{side} net {net}"


def _format_compare(node: Compare) -> str:
    op = "=" if node.op == "==" else node.op
    if node.field in ("src_port", "dst_port"):
        return f"{node.field.removesuffix('_port')} port {op} {node.value}"
    return f"{node.field} {op} {node.value}"


def _proto_text(number: int) -> str:
    name = PROTO_NAMES.get(number, "").lower()
    if name and name not in _NFDUMP_REFUSES and PROTO_NUMBERS.get(name) == number:
        return name
    return str(number)


def format_filter(node: Node) -> str:
    """AST -> nfdump filter text that parses back to the same AST (for display and checks)."""

    def wrap(child: Node, inside: type) -> str:
        text = format_filter(child)
        needs = isinstance(child, Or) and inside is And or isinstance(child, (And, Or)) and inside is Not
        return f"({text})" if needs else text

    if isinstance(node, Any):
        return "any"
    if isinstance(node, Not):
        return "not " + wrap(node.child, Not)
    if isinstance(node, And):
        return " and ".join(wrap(c, And) for c in node.children)
    if isinstance(node, Or):
        return " or ".join(wrap(c, Or) for c in node.children)
    if isinstance(node, Compare):
        return _format_compare(node)
    if isinstance(node, PortIn):
        return f"{node.column.removesuffix('_port')} port in [{' '.join(map(str, node.ports))}]"
    if isinstance(node, Proto):
        return f"proto {_proto_text(node.number)}"
    if isinstance(node, Address):
        return _format_address(node)
    if isinstance(node, Flags):
        return "flags " + "".join(ch for ch, bit in _TCP_FLAG_BITS.items() if node.mask & bit)
    if isinstance(node, Family):
        return f"ipv{node.version}"
    raise TypeError(f"unknown filter node {node!r}")  # pragma: no cover
