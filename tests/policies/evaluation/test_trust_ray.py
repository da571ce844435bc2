"""The Ray engine: a local instance listens on the loopback interface only, and an address
where no cluster answers is refused in one line before any work."""

import time

import numpy as np
import pytest

import policies.evaluation.sweep as lib
from policies.evaluation.store import ResultStore
from runners import sweep
from tests.policies.evaluation.reliability_tools import one_line_error

ray = pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")

LOOPBACK = ("127.0.0.1", "::1", "::ffff:127.0.0.1")


def _listening() -> set[tuple[str, str]]:
    """(address, process name) of every listening TCP socket of this process and its
    descendants (the local Ray instance's GCS, raylet, workers and agents)."""
    me = psutil.Process()
    pids = {p.pid for p in [me, *me.children(recursive=True)]}
    out = set()
    for c in psutil.net_connections(kind="tcp"):
        if c.status == psutil.CONN_LISTEN and c.pid in pids:
            with_name = psutil.Process(c.pid).name() if psutil.pid_exists(c.pid) else "?"
            out.add((c.laddr.ip, with_name))
    return out


@pytest.mark.slow
def test_local_ray_instance_listens_on_loopback_only(tmp_path, monkeypatch):
    seen: dict[str, object] = {}
    real_shutdown = ray.shutdown

    def inspect_then_shutdown(*a, **k):
        if ray.is_initialized() and "sockets" not in seen:
            seen["sockets"] = _listening()
        return real_shutdown(*a, **k)

    monkeypatch.setattr(ray, "shutdown", inspect_then_shutdown)
    cells = lib.expand(["pos2"], [2], ["mrt-target"], [0], 4)
    store = ResultStore(tmp_path / "r.sqlite")
    out = lib.run_sweep(cells, store, engine="ray", jobs=1, chunk=2, progress=False)
    assert out.rows == 4 and np.isfinite([r["ssnr"] for r in store.rows()]).all()
    sockets = seen["sockets"]
    assert any(name == "gcs_server" for _, name in sockets), sockets
    exposed = sorted(s for s in sockets if s[0] not in LOOPBACK)
    assert not exposed, f"listening beyond the loopback interface: {exposed}"


@pytest.mark.slow
def test_a_running_cluster_passes_the_address_check():
    lib.start_local_ray(1, log_to_driver=False, logging_level="ERROR")
    try:
        t0 = time.perf_counter()
        lib.check_ray_address(ray.get_runtime_context().gcs_address)
        assert time.perf_counter() - t0 < 10
    finally:
        ray.shutdown()


@pytest.mark.parametrize("address", ["127.0.0.1:1", "not an address", "ray://127.0.0.1:1"])
def test_unreachable_address_fails_fast_in_one_line(address):
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match="address") as e:
        lib.check_ray_address(address)
    assert time.perf_counter() - t0 < 5 and "\n" not in str(e.value)


def test_sweep_with_an_unreachable_address_exits_2_before_the_run_folder(tmp_path, capsys):
    out = tmp_path / "run"
    t0 = time.perf_counter()
    rc = sweep.main(["--scenario", "pos2", "--users", "2", "--policy", "mrt-target",
                     "--drops", "2", "--engine", "ray", "--address", "127.0.0.1:1",
                     "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and one_line_error(err) and "127.0.0.1:1" in err, err
    assert not out.exists() and time.perf_counter() - t0 < 10
