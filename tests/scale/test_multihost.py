"""The nightly jobs on Celery workers on three hosts write exactly the rows one worker writes.

The hosts are network namespaces with veth links on this machine (``bench.netns``); the
scenario is ``bench.multihost.run_scenario`` (``python -m bench.multihost`` runs it on a
bigger company). Every worker reaches a PostgreSQL cluster and a Redis of the test's own
through its link only, so the test also checks where their connections came from.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from bench import netns
from bench.multihost import Config, run_scenario
from tests.conftest import require

NO_NAMESPACES = netns.unavailable()


@pytest.fixture
def namespaces():
    """Network namespaces need CAP_NET_ADMIN: like Chromium, skipped locally without it and
    required in CI (.ci/run runs as root and installs iproute2)."""
    require(NO_NAMESPACES is None, f"Network namespaces ({NO_NAMESPACES})", install="Run the suite as root.")


# bench.metrics_data's company at 300 accounts, 6 months to 2026-11-20, 38 people, seed 7,
# with bench.comp_run's plans: what refresh, the 2026-10 comp run and the forecasts write.
EXPECTED_ROWS = {
    "usage_metricsrefresh": 1,
    "usage_accountmetrics": 300,  # one per account
    "usage_portfoliometrics": 4,
    "usage_alert": 170,
    "usage_alertevent": 209,
    "comp_comprun": 1,
    "comp_ledgerline": 379,
    "comp_statement": 0,  # statements are made when a month is closed, not by the run
    "comp_attainment": 40,
    "forecasting_forecastrun": 6,  # one per shard
    "forecasting_accountforecast": 300,  # one per account
    "forecasting_forecastpoint": 38_480,
}
TASKS = {"refresh", "comp", "nightly", *(f"shard {i}" for i in range(6))}


def _namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def _links() -> str:
    return subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout


def _connect_from(host: netns.Host, address: str) -> int:
    """errno of a TCP connect from inside ``host`` to ``address``:9 (111: refused, so reached)."""
    code = "import socket, sys; s = socket.socket(); s.settimeout(2); print(s.connect_ex((sys.argv[1], 9)))"
    command = host.argv([sys.executable, "-c", code, address])
    return int(subprocess.run(command, capture_output=True, text=True, check=True).stdout)


@pytest.mark.usefixtures("namespaces")
def test_a_host_reaches_only_its_gateway_and_is_removed_when_the_block_fails():
    seen: dict[str, object] = {}

    def use_and_fail() -> None:
        with netns.worker_hosts(2) as hosts:
            seen["hosts"] = hosts
            seen["present"] = {h.namespace for h in hosts} <= _namespaces()
            seen["gateway"] = _connect_from(hosts[1], hosts[1].gateway)
            seen["other host"] = _connect_from(hosts[1], hosts[0].address)
            raise RuntimeError("inside")

    with pytest.raises(RuntimeError, match="inside"):
        use_and_fail()

    assert seen["present"] is True
    assert seen["gateway"] == errno.ECONNREFUSED  # nothing listens on port 9: a reply came back
    assert seen["other host"] == errno.ENETUNREACH  # no route out of the namespace but its link
    hosts = seen["hosts"]
    assert not {h.namespace for h in hosts} & _namespaces()
    assert not any(h.outer_link in _links() for h in hosts)


@pytest.mark.usefixtures("namespaces")
def test_namespaces_and_servers_left_by_a_dead_run_are_removed(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = f"revops-h1-{dead.pid}"
    subprocess.run(["ip", "netns", "add", stale], check=True)
    alive = f"revops-h1-{os.getpid()}"  # ours, this very process: must stay
    subprocess.run(["ip", "netns", "add", alive], check=True)
    orphan = netns.Redis(addresses=[], directory=Path(tempfile.mkdtemp(prefix=f"revops-redis-{dead.pid}-")))
    orphan.start()
    try:
        removed = netns.remove_stale()

        assert stale in removed
        assert orphan.directory.name in removed
        assert stale not in _namespaces()
        assert alive in _namespaces()
        assert orphan.process.wait(timeout=10) is not None  # SIGQUIT: the server has exited
        assert not orphan.directory.exists()
    finally:
        subprocess.run(["ip", "netns", "delete", stale], capture_output=True)
        subprocess.run(["ip", "netns", "delete", alive], capture_output=True)
        orphan.stop()


@pytest.mark.usefixtures("namespaces")
@pytest.mark.slow
@pytest.mark.worker
def test_refresh_comp_and_forecasts_on_three_worker_hosts_write_the_rows_one_host_writes(tmp_path):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "revops.settings.test"}

    result = run_scenario(Config(accounts=300, months=6, people=38, shards=6, hosts=3), env=env, workdir=tmp_path)

    one, three = result.runs
    print(f"wall time: 1 host {one.wall_s:.2f} s, 3 hosts {three.wall_s:.2f} s (seed {result.seed_s:.1f} s)")
    hosts = result.hosts
    # Each worker's database connections came from its own namespace, over its link, and
    # so did its broker connections.
    assert one.client_addrs == {"h1": {hosts[0].address}}
    assert three.client_addrs == {f"h{h.index}": {h.address} for h in hosts}
    assert {h.address for h in hosts} <= three.broker_addrs
    # Every task ran exactly once; with three hosts the shards spread over two at least.
    assert set(one.ran_on) == TASKS
    assert set(one.ran_on.values()) == {"h1"}
    assert set(three.ran_on) == TASKS
    assert len({three.ran_on[f"shard {i}"] for i in range(6)}) >= 2, three.ran_on
    for run in (one, three):
        refresh = {k: v for k, v in run.results["refresh"].items() if k != "seconds"}
        assert refresh == {"as_of": "2026-11-20", "accounts": 300, "opened": 170, "cleared": 0}
        assert run.results["comp"] == {"period": "2026-10", "lines_added": 379, "skipped": ""}
        assert run.results["nightly"] == {"as_of": "2026-11-19", "shards": 6}
    assert result.rows == EXPECTED_ROWS
    assert result.differences == {}
