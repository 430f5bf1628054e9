"""`appliers.NetworkList`: validated on apply, swapped atomically, exact rollback, O(log n) lookup."""

from __future__ import annotations

import ipaddress
import pathlib
import random
import timeit

import pytest
from conftest import write_atomic
from prometheus_client import CollectorRegistry

import selreload as sr
from selreload import appliers


@sr.config
class App:
    allow: list[str] = sr.hot(factory=list)


def started(tmp_path: pathlib.Path, text: str, acl: appliers.NetworkList) -> tuple[sr.Reloader[App], pathlib.Path]:
    cfg = tmp_path / "c.yaml"
    write_atomic(cfg, text)
    reloader = sr.Reloader(App, sources=[sr.YamlFile(cfg, watch=False)], registry=CollectorRegistry())
    reloader.on("allow", acl)
    return reloader, cfg


def test_allow_and_deny_lists_answer_for_v4_v6_and_mapped_addresses(tmp_path: pathlib.Path) -> None:
    """Inside/outside per family; `::ffff:10.1.2.3` is the IPv4 address; a bare address is a /32."""
    acl = appliers.NetworkList("allow")
    reloader, _ = started(tmp_path, 'allow: [10.0.0.0/8, "2001:db8::/32", 192.168.1.7]\n', acl)
    with reloader:
        assert acl.allowed("10.1.2.3") and "10.255.255.255" in acl
        assert not acl.allowed("11.0.0.0") and not acl.allowed("192.168.1.8")
        assert acl.allowed("192.168.1.7") and acl.allowed(ipaddress.ip_address("2001:db8::1"))
        assert acl.allowed("::ffff:10.1.2.3") and not acl.allowed("2001:db9::")
        deny = appliers.NetworkList("deny", ["10.0.0.0/8"])
        assert not deny.allowed("10.0.0.1") and deny.allowed("8.8.8.8")
        with pytest.raises(ValueError, match="not an IP address"):
            acl.contains("10.1")


def test_a_bad_entry_rolls_back_and_the_old_list_stays(tmp_path: pathlib.Path) -> None:
    """A typo or host bits set is refused with its index and a suggestion; the old table is
    still the same object afterwards."""
    acl = appliers.NetworkList()
    reloader, cfg = started(tmp_path, "allow: [10.0.0.0/8]\n", acl)
    with reloader:
        table = acl._table
        write_atomic(cfg, "allow: [10.0.0.0/8, 10.1.2.3/8]\n")
        result = reloader.reload()
        assert result.outcome is sr.Outcome.ROLLED_BACK
        assert "allow[1]" in str(result.errors[0]) and "did you mean 10.0.0.0/8" in str(result.errors[0])
        assert acl._table is table and acl.networks == ("10.0.0.0/8",)
        write_atomic(cfg, "allow: [10.0.0.0/8, not-a-net]\n")
        assert reloader.reload().outcome is sr.Outcome.ROLLED_BACK
        write_atomic(cfg, "allow: [172.16.0.0/12]\n")
        assert reloader.reload().outcome is sr.Outcome.APPLIED
        assert acl.allowed("172.20.0.1") and not acl.allowed("10.0.0.1")


def test_rollback_after_a_later_failure_restores_the_exact_table(tmp_path: pathlib.Path) -> None:
    """A later applier failing puts back the very table object that was live."""
    acl = appliers.NetworkList()
    cfg = tmp_path / "c.yaml"
    write_atomic(cfg, "allow: [10.0.0.0/8]\n")
    reloader = sr.Reloader(App, sources=[sr.YamlFile(cfg, watch=False)], registry=CollectorRegistry())
    reloader.on("allow", acl)

    @reloader.on("allow")
    def refuse(changes: object, snapshot: object) -> None:
        if len(acl) > 1:
            raise RuntimeError("no")

    with reloader:
        table = acl._table
        write_atomic(cfg, "allow: [10.0.0.0/8, 1.0.0.0/8]\n")
        assert reloader.reload().outcome is sr.Outcome.ROLLED_BACK
        assert acl._table is table


def test_merged_ranges_agree_with_ipaddress_on_random_lists() -> None:
    """Overlapping, nested and adjacent networks are merged; lookups agree with a linear
    `ip in network` scan for random addresses."""
    rng = random.Random(7)
    nets = [
        ipaddress.ip_network(f"{ipaddress.IPv4Address(rng.randrange(2**32))}/{rng.randrange(8, 33)}", strict=False)
        for _ in range(300)
    ]
    nets += [ipaddress.ip_network("10.0.0.0/9"), ipaddress.ip_network("10.128.0.0/9")]
    acl = appliers.NetworkList("allow", [str(n) for n in nets])
    probes = [ipaddress.ip_address(rng.randrange(2**32)) for _ in range(2000)] + [n.network_address for n in nets]
    for ip in probes:
        assert acl.contains(ip) == any(ip in n for n in nets), ip
    assert len(acl._table.v4[0]) < len(nets)  # the two /9s became one range at least


def test_lookup_cost_grows_like_log_n() -> None:
    """100k networks: a lookup is one bisect; a million-step linear scan is not what runs."""
    acl = appliers.NetworkList("deny", [f"{ipaddress.IPv4Address(i * 512)}/24" for i in range(100_000)])
    assert len(acl) == 100_000 and len(acl._table.v4[0]) == 100_000
    assert acl.contains("0.1.134.255") and not acl.contains("0.1.135.0")
    per = min(timeit.repeat(lambda: acl.contains("1.2.3.4"), number=2000, repeat=5)) / 2000
    assert per < 20e-6, per
