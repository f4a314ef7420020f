"""GuardedProcess helpers: the payload user, the work dir hand-over, reachability."""

from __future__ import annotations

import os

import pytest

from pilot.util.guardedprocess import hand_over, payload_user_ids, reachable_by


@pytest.mark.skipif(os.geteuid() != 0, reason="changes file owners: root")
def test_hand_over_leaves_links_and_shared_inodes_alone(tmp_path):
    work = tmp_path / "work"
    (work / "sub").mkdir(parents=True)
    own = work / "sub" / "own.txt"
    own.write_text("x")
    shared = tmp_path / "storage.dat"
    shared.write_text("replica")
    os.link(shared, work / "input.dat")  # an input hard-linked from a storage area
    (work / "link").symlink_to(shared)
    hand_over(str(work), 65534, 65534)
    assert os.stat(work).st_uid == 65534 and os.stat(work / "sub").st_uid == 65534 and os.stat(own).st_uid == 65534
    assert os.stat(shared).st_uid == 0  # the replica's inode is not the payload's
    assert os.lstat(work / "link").st_uid == 0


def test_reachable_by():
    import shutil
    import tempfile

    base = tempfile.mkdtemp(dir="/tmp")  # /tmp is searchable by everybody
    try:
        os.makedirs(os.path.join(base, "a", "work"))
        os.chmod(base, 0o755)
        os.chmod(os.path.join(base, "a"), 0o711)
        assert reachable_by(os.path.join(base, "a", "work"), 65534, 65534)
        os.chmod(os.path.join(base, "a"), 0o700)  # closed to others
        assert not reachable_by(os.path.join(base, "a", "work"), 65534, 65534)
    finally:
        shutil.rmtree(base)


def test_payload_user_ids():
    if os.geteuid() != 0:
        assert payload_user_ids("nobody") is None  # an unprivileged pilot keeps its uid
        return
    assert payload_user_ids("nobody")[0] == 65534
    assert payload_user_ids("12345") == (12345, 12345)
    assert payload_user_ids("") is None and payload_user_ids("root") is None and payload_user_ids("off") is None
    assert payload_user_ids("no-such-user-here")[0] == 65534  # logged, then nobody
