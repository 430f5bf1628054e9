"""NetworkList lookup with 100k networks, beside its floor measured in the same run.

The floor is the least a lookup can cost in Python: `bisect` over a sorted list of ints
plus one comparison, on an address already an int. NetworkList adds parsing the address
text (`socket.inet_pton`) and the family switch. Run: `python benchmarks/bench_netlist.py`.
"""

from __future__ import annotations

import bisect
import ipaddress
import random
import socket
import time
import timeit

from selreload.appliers import NetworkList

N = 100_000


def ns(fn: object, items: list[object], number: int = 200) -> float:
    """ns per call of `fn(item)` over `items`, best of 5 (the loop is in C: `map`)."""
    run = lambda: any(map(fn, items)) and None  # noqa: E731
    return min(timeit.repeat(run, number=number, repeat=5)) / (number * len(items)) * 1e9


def main() -> None:
    rng = random.Random(1)
    nets = sorted({f"{ipaddress.IPv4Address(rng.randrange(2**32) >> 8 << 8)}/24" for _ in range(N)})
    t0 = time.perf_counter()
    acl = NetworkList("deny", nets)
    build = time.perf_counter() - t0
    probes = [str(ipaddress.IPv4Address(rng.randrange(2**32))) for _ in range(1024)]
    ints = [int(ipaddress.IPv4Address(p)) for p in probes]
    starts = sorted(int(ipaddress.ip_network(n).network_address) for n in nets)
    ends = [s + 255 for s in starts]

    def floor(ip: int) -> bool:
        i = bisect.bisect_right(starts, ip) - 1
        return i >= 0 and ip <= ends[i] and False

    def parse_floor(text: str) -> bool:
        return int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big") < 0

    objs = [ipaddress.IPv4Address(p) for p in probes]
    print(f"NetworkList: {len(acl):,} networks built in {build * 1e3:.0f} ms")
    small = NetworkList("deny", nets[:100])
    contains = acl.contains
    print(f"  floor: bisect over sorted ints       {ns(floor, ints):7.0f} ns/op")
    print(f"  floor: inet_pton text -> int         {ns(parse_floor, probes):7.0f} ns/op")
    print(f"  NetworkList.contains(str)            {ns(lambda p: contains(p) and False, probes):7.0f} ns/op")
    print(f"  NetworkList.contains(IPv4Address)    {ns(lambda p: contains(p) and False, objs):7.0f} ns/op")
    print(f"  same, 100 networks (log n)           {ns(lambda p: small.contains(p) and False, probes):7.0f} ns/op")


if __name__ == "__main__":
    main()
