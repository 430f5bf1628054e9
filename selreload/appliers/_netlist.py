"""`NetworkList`: an IP/CIDR allow or deny list, swapped atomically, looked up in O(log n)."""

from __future__ import annotations

import bisect
import contextlib
import ipaddress
import socket
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import attrs

from .._change import UNSET, Change
from .._snapshot import Snapshot
from ._common import Base, paths_of

Address = str | ipaddress.IPv4Address | ipaddress.IPv6Address


def _merge(spans: list[tuple[int, int]]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Sorted, disjoint, non-adjacent `(starts, ends)` covering the same addresses."""
    spans.sort()
    starts: list[int] = []
    ends: list[int] = []
    for lo, hi in spans:
        if ends and lo <= ends[-1] + 1:
            if hi > ends[-1]:
                ends[-1] = hi
        else:
            starts.append(lo)
            ends.append(hi)
    return tuple(starts), tuple(ends)


@attrs.frozen
class _Table:
    """One immutable list: per family, the merged ranges as two sorted int tuples."""

    entries: tuple[str, ...]
    v4: tuple[tuple[int, ...], tuple[int, ...]]
    v6: tuple[tuple[int, ...], tuple[int, ...]]

    @classmethod
    def build(cls, value: Any, path: str) -> _Table:
        if value is UNSET or value is None:
            value = ()
        if isinstance(value, str | bytes) or not isinstance(value, Iterable):
            raise ValueError(f"{path}: expected a list of networks, got {type(value).__name__}")
        v4: list[tuple[int, int]] = []
        v6: list[tuple[int, int]] = []
        entries = []
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise ValueError(f"{path}[{i}]: expected a network like '10.0.0.0/8', got {item!r}")
            fast = _fast_v4(item)
            if fast is not None:
                v4.append(fast)
                entries.append(item)
                continue
            try:
                net = ipaddress.ip_network(item.strip())
            except ValueError as exc:
                hint = ""
                with contextlib.suppress(ValueError):
                    hint = f" (did you mean {ipaddress.ip_network(item.strip(), strict=False)}?)"
                raise ValueError(f"{path}[{i}]: {item!r} is not a network: {exc}{hint}") from None
            span = (int(net.network_address), int(net.broadcast_address))
            (v4 if net.version == 4 else v6).append(span)
            entries.append(str(net))
        return cls(tuple(entries), _merge(v4), _merge(v6))


def _fast_v4(text: str) -> tuple[int, int] | None:
    """The range of a canonical `a.b.c.d/len` (or bare `a.b.c.d`) without `ipaddress`
    (~8x faster on a 100k list); `None` sends anything else down the full parser."""
    addr, slash, bits = text.partition("/")
    if slash and not (bits.isdigit() and bits.isascii() and len(bits) <= 2):
        return None
    prefix = int(bits) if slash else 32
    if prefix > 32 or any(len(p) > 1 and p[0] == "0" for p in addr.split(".")):
        return None
    try:
        start = int.from_bytes(socket.inet_pton(socket.AF_INET, addr), "big")
    except OSError:
        return None
    size = 1 << (32 - prefix)
    if start & (size - 1):
        return None  # host bits set: the full parser explains
    return start, start + size - 1


def _find(ranges: tuple[tuple[int, ...], tuple[int, ...]], ip: int) -> bool:
    starts, ends = ranges
    i = bisect.bisect_right(starts, ip) - 1
    return i >= 0 and ip <= ends[i]


_V4_MAPPED = 0xFFFF << 32


def _parse(ip: Address) -> tuple[int, int]:
    """`(version, int)` of an address; IPv4-mapped IPv6 (`::ffff:10.0.0.1`) counts as IPv4."""
    if isinstance(ip, str):
        # inet_pton is strict (no `10.1` shorthand) and ~5x faster than ipaddress.
        try:
            return 4, int.from_bytes(socket.inet_pton(socket.AF_INET, ip), "big")
        except OSError:
            pass
        try:
            value = int.from_bytes(socket.inet_pton(socket.AF_INET6, ip.partition("%")[0]), "big")
        except OSError:
            raise ValueError(f"not an IP address: {ip!r}") from None
    elif isinstance(ip, ipaddress.IPv4Address):
        return 4, int(ip)
    elif isinstance(ip, ipaddress.IPv6Address):
        value = int(ip)
    else:
        raise TypeError(f"expected an IP address, got {type(ip).__name__}")
    if value >> 32 == 0xFFFF:
        return 4, value - _V4_MAPPED
    return 6, value


class NetworkList(Base):
    """An allow or deny list of IP networks the application asks: `acl.allowed(client_ip)`.

    Register it at a `list[str]` field of networks (`"10.0.0.0/8"`, `"2001:db8::/32"`, a bare
    address for one host): `reloader.on("admin.allow", NetworkList("allow"))`. Every entry
    is validated on apply (a bad one raises, naming its index, so the reload rolls back);
    overlapping and adjacent networks are merged into sorted ranges, and a lookup is one
    binary search: O(log n), no lock. The new list is swapped in with one assignment;
    rollback swaps the exact previous one back.

    Args:
        mode: `"allow"` (`allowed()` is true inside the list) or `"deny"` (true outside it).
        networks: the list until the config is applied.
        name: how metrics, spans and errors name this applier.
    """

    def __init__(
        self,
        mode: Literal["allow", "deny"] = "allow",
        networks: Iterable[str] = (),
        *,
        name: str | None = None,
    ) -> None:
        if mode not in ("allow", "deny"):
            raise ValueError(f"mode must be 'allow' or 'deny', got {mode!r}")
        super().__init__(name or f"NetworkList({mode})")
        self.mode = mode
        self._table = _Table.build(list(networks), "networks")

    def __repr__(self) -> str:
        return f"<NetworkList {self.name!r} {self.mode} {len(self._table.entries)} networks>"

    def __len__(self) -> int:
        return len(self._table.entries)

    @property
    def networks(self) -> tuple[str, ...]:
        """The networks as configured (normalised: `10.0.0.0/8`), in config order."""
        return self._table.entries

    def contains(self, ip: Address) -> bool:
        """Whether `ip` falls in one of the networks.

        Raises:
            ValueError: `ip` is not an IP address.
        """
        table = self._table  # one read: a reload swapping the table mid-lookup is not seen
        version, value = _parse(ip)
        return _find(table.v4 if version == 4 else table.v6, value)

    __contains__ = contains

    def allowed(self, ip: Address) -> bool:
        """Whether `ip` passes: inside the list for an allow list, outside it for a deny list."""
        return self.contains(ip) == (self.mode == "allow")

    def apply(self, changes: Sequence[Change], snapshot: Snapshot[Any]) -> None:
        """Build the new table and swap it in; raises `ValueError` (changing nothing) on an
        entry that is not a network."""
        if len(changes) != 1:
            raise ValueError(
                f"{self.name}: expected one list field, got {len(changes)} ({', '.join(paths_of(changes))})"
            )
        (change,) = changes
        table = _Table.build(change.new, change.path)
        with self._lock:
            self._undo.push(paths_of(changes), self._table)
            self._table = table

    def rollback(self, changes: Sequence[Change], snapshot: Snapshot[Any]) -> None:
        """Swap back the exact table that was live before `apply`."""
        with self._lock:
            previous = self._undo.pop(paths_of(changes))
            if previous is None and len(changes) == 1:
                previous = _Table.build(changes[0].old, changes[0].path)
            if previous is not None:
                self._table = previous
