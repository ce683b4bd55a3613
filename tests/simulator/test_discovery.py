"""`fieldkit discover` against simulated chargers on loopback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fieldkit.cli.main import main
from fieldkit.discovery.ssh import expand
from fieldkit.errors import UsageError
from tests.simulator.test_sim_ssh import SimProcess
from tests.support.backoffice import free_port


def test_discover_identifies_chargers_and_reports_the_rest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first, second = SimProcess(tmp_path / "one"), SimProcess(tmp_path / "two")
    try:
        # Both simulators accept the first one's client key, so one --ssh-key serves the scan.
        key = tmp_path / "one" / "client_key"
        (tmp_path / "two" / "client_key.pub").write_text((tmp_path / "one" / "client_key.pub").read_text())
        second.stop()
        second = SimProcess(tmp_path / "two")
        ports = [a.rsplit(":", 1)[1] for a in (first.address, second.address)]
        closed = free_port()
        argv = [
            "discover",
            "--ssh",
            f"127.0.0.1:{ports[0]}",
            "--ssh",
            f"127.0.0.1:{ports[1]}",
            "--ssh",
            f"127.0.0.1:{closed}",
            "--ssh-key",
            str(key),
            "--json",
        ]
        assert main(argv) == 0
        unpinned = {r["address"]: r["outcome"] for r in json.loads(capsys.readouterr().out)}
        assert unpinned[f"127.0.0.1:{ports[0]}"] == "host-key-unknown"  # never pinned silently
        assert unpinned[f"127.0.0.1:{closed}"] == "closed"
        assert main([*argv, "--accept-new-host-key"]) == 0
        found = {r["address"]: r for r in json.loads(capsys.readouterr().out)}
        for port in ports:
            assert found[f"127.0.0.1:{port}"]["outcome"] == "charger"
            assert found[f"127.0.0.1:{port}"]["identity"]["model"] == "VQ-AC22"
        # A scanned range lists only what answers.
        assert main(["discover", "--ssh", f"127.0.0.1/32:{ports[0]}", "--ssh-key", str(key), "--json"]) == 0
        ranged = json.loads(capsys.readouterr().out)
        assert [r["outcome"] for r in ranged] == ["charger"]
    finally:
        first.stop()
        second.stop()


@pytest.mark.parametrize("target", ["127.0.0.0/8", "not/a/range", "host:port"])
def test_bad_or_oversized_targets_are_refused(target: str) -> None:
    with pytest.raises(UsageError):
        expand([target], 22)


def test_targets_expand() -> None:
    assert len(expand(["127.0.0.0/30"], 22)) == 2
    assert expand(["[::1]:2222"], 22)[0].port == 2222


def test_mdns_announced_chargers_are_found_and_identified(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from fieldkit.simulator.mdns import announced
    from tests.support.simssh import running_sim

    with running_sim(tmp_path / "charger", serial="SN-MDNS") as sim, announced("VQ-AC22-SN-MDNS", sim.server.port):
        argv = ["discover", "--mdns", "--mdns-interface", "127.0.0.1", "--mdns-seconds", "1.5"]
        assert main([*argv, "--ssh-key", str(sim.client_key), "--accept-new-host-key", "--json"]) == 0
        found = json.loads(capsys.readouterr().out)
    assert [(r["address"], r["outcome"]) for r in found] == [(f"127.0.0.1:{sim.server.port}", "charger")]
    assert found[0]["identity"]["serial"] == "SN-MDNS"


def test_an_mdns_browse_that_finds_nothing_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["discover", "--mdns", "--mdns-interface", "127.0.0.1", "--mdns-seconds", "0.3"]) == 0
    assert "none announced over mDNS" in capsys.readouterr().out


def test_a_candidate_becomes_the_address_an_update_takes() -> None:
    [v4] = expand(["192.0.2.7:2222"], 22)
    [v6] = expand(["[fe80::1]:22"], 22)
    assert v4.ssh_address("root") == "ssh://root@192.0.2.7:2222"
    assert v6.ssh_address("admin") == "ssh://admin@[fe80::1]:22"
