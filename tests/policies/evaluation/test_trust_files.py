"""Files the runners write: permissions follow the umask."""

import os
import stat

import pytest

from cfisac_env import runs


@pytest.fixture
def set_umask():
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077, 0o027])
def test_atomic_writes_follow_the_umask(tmp_path, set_umask, mask):
    set_umask(mask)
    runs.write_json(tmp_path / "summary.json", {"a": 1})
    runs.write_text(tmp_path / "notes.txt", "x")
    with runs.atomic_path(tmp_path / "bars.png") as tmp:
        tmp.write_bytes(b"\x89PNG")                        # as savefig does: reopen by path
    plain = tmp_path / "plain"
    plain.write_text("x")                                  # what a plain open gives
    want = stat.S_IMODE(plain.stat().st_mode)
    assert want == 0o666 & ~mask
    for name in ("summary.json", "notes.txt", "bars.png"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == want, name
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_umask_is_read_without_changing_it(set_umask):
    set_umask(0o027)
    assert runs.umask() == 0o027
    assert runs.umask() == 0o027
