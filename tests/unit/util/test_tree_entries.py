"""The one walk of a work dir: everything below it, links not followed, unreadable parts skipped."""

import os

from pilot.util.filehandling import directory_size, tree_entries


def test_links_are_listed_not_followed(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a").write_bytes(b"x" * 10)
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    (outside / "big").write_bytes(b"y" * 1000)
    os.symlink(outside, tmp_path / "link")
    names = sorted(os.path.relpath(entry.path, tmp_path) for entry, _st in tree_entries(str(tmp_path)))
    assert names == ["link", "sub", os.path.join("sub", "a")]
    assert directory_size(str(tmp_path)) == 10 + os.lstat(tmp_path / "link").st_size


def test_a_missing_or_unreadable_directory_gives_nothing(tmp_path):
    assert list(tree_entries(str(tmp_path / "missing"))) == []
    (tmp_path / "file").write_text("z")
    assert list(tree_entries(str(tmp_path / "file"))) == []  # not a directory
