"""Submission layouts: a folder, a zip or a Canvas export per student; hostile zips refused with
a reason, nothing written outside the scratch folder, junk left out and listed."""
from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path

import pytest

from grader.batching.layouts import UnsafeArchive, ZipLimits, canvas_original_name, discover_entries, extract_zip

from conftest import PSET4_FIXTURES, REPO

MARKERS = ("mlp.py", "lib/mlp/layer_utils.py")
KNOWN = ("mlp.py", "pset4.ipynb", "utils.py", "lib/mlp/layer_utils.py", "lib/mlp/fully_conn.py",
         "lib/mlp/train.py", "lib/optim.py", "Problem_1.ipynb", "lib/__init__.py", "lib/mlp/__init__.py")


def make_zip(path: Path, members: dict[str, bytes], symlinks: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return path


def zip_bomb(path: Path, size: int) -> Path:
    """One member of `size` zero bytes: a few kilobytes compressed."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("mlp.py", "w", force_zip64=True) as out:
        chunk = bytes(1 << 20)
        for _ in range(size >> 20):
            out.write(chunk)
    return path


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_zip_of_a_folder_is_unwrapped_and_junk_is_left_out_and_listed(tmp_path):
    archive = make_zip(tmp_path / "alice.zip", {
        "pset4/mlp.py": b"print('mine')\n", "pset4/pset4.ipynb": b"{}", "pset4/__pycache__/mlp.cpython-311.pyc": b"x",
        "__MACOSX/pset4/._mlp.py": b"apple", "pset4/.DS_Store": b"ds"}, symlinks={"pset4/secret": "/etc/passwd"})
    dest = tmp_path / "dest"
    dest.mkdir()
    notes = extract_zip(archive, dest, MARKERS)
    assert tree(dest) == {"mlp.py": b"print('mine')\n", "pset4.ipynb": b"{}"}
    assert notes[0] == "zip: files taken from its folder pset4/"
    for left_out in ("pset4/secret (symbolic link)", "__MACOSX/pset4/._mlp.py (not part of a submission)",
                     "pset4/.DS_Store (not part of a submission)",
                     "pset4/__pycache__/mlp.cpython-311.pyc (not part of a submission)"):
        assert left_out in notes[1]


@pytest.mark.parametrize("name", ["../evil.py", "pset4/../../evil.py", "/tmp/evil.py", "..\\evil.py", "C:/evil.py"])
def test_path_traversal_is_refused_and_nothing_is_written(tmp_path, name):
    archive = make_zip(tmp_path / "eve.zip", {"mlp.py": b"ok", name: b"pwned"})
    dest = tmp_path / "scratch" / "dest"
    dest.mkdir(parents=True)
    with pytest.raises(UnsafeArchive, match="unsafe path"):
        extract_zip(archive, dest, MARKERS)
    assert tree(tmp_path / "scratch") == {} and not (tmp_path / "evil.py").exists()


def test_zip_bomb_by_size_is_refused_before_anything_is_extracted(tmp_path):
    archive = zip_bomb(tmp_path / "bomb.zip", 150 << 20)  # 150 MiB of zeros, ~150 KiB on disk
    assert archive.stat().st_size < 1 << 20
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(UnsafeArchive, match="zip bomb"):
        extract_zip(archive, dest, MARKERS, ZipLimits(max_file_bytes=200 << 20))
    assert tree(dest) == {}


def test_zip_bomb_by_compression_ratio_is_refused(tmp_path):
    archive = zip_bomb(tmp_path / "bomb.zip", 8 << 20)  # 8 MiB: under the size limits, ~1000-fold
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(UnsafeArchive, match=r"expands \d+-fold \(a zip bomb\?\)"):
        extract_zip(archive, dest, MARKERS)


def test_bytes_are_counted_as_written_not_as_declared(tmp_path):
    """A header that understates the size cannot get more than the limit onto the disk."""
    archive = make_zip(tmp_path / "liar.zip", {"mlp.py": b"a" * 5000})
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(UnsafeArchive, match="zip bomb"):
        extract_zip(archive, dest, MARKERS, ZipLimits(max_total_bytes=4000, max_file_bytes=10_000))


def test_too_many_members_and_corrupt_zips_are_refused(tmp_path):
    many = make_zip(tmp_path / "many.zip", {f"f{i}.py": b"" for i in range(30)})
    with pytest.raises(UnsafeArchive, match="30 entries, more than the 20 allowed"):
        extract_zip(many, tmp_path, MARKERS, ZipLimits(max_members=20))
    (tmp_path / "fake.zip").write_bytes(b"this is not a zip")
    with pytest.raises(UnsafeArchive, match="not a readable zip file"):
        extract_zip(tmp_path / "fake.zip", tmp_path, MARKERS)


@pytest.mark.parametrize("filename, expected", [
    ("smithjohn_12345_67890_mlp.py", ("mlp.py", False, 0)),
    ("smithjohn_LATE_12345_67890_mlp.py", ("mlp.py", True, 0)),
    ("smithjohn_late_12345_67890_mlp-1.py", ("mlp.py", True, 1)),
    ("smithjohn_12345_67890_mlp-12.py", ("mlp.py", False, 12)),
    ("smithjohn_12345_67890_pset4-2.ipynb", ("pset4.ipynb", False, 2)),
    ("smithjohn_12345_67890_my-plot-2.png", ("my-plot-2.png", False, 0)),  # not a course file: kept as is
    ("leeann_5_6_fully_conn.py", ("lib/mlp/fully_conn.py", False, 0)),
    ("oreillypat_12345_mlp.py", ("mlp.py", False, 0)),
])
def test_canvas_names_are_restored(filename, expected):
    assert canvas_original_name(filename, KNOWN) == expected


def test_canvas_name_that_does_not_match_is_none():
    assert canvas_original_name("mlp.py", KNOWN) is None
    assert canvas_original_name("notes_final.txt", KNOWN) is None


def test_flat_canvas_export_is_grouped_per_student(tmp_path):
    export = tmp_path / "export"
    export.mkdir()
    reference = (REPO / "reference" / "pset4" / "mlp.py").read_bytes()
    (export / "smithjohn_12345_67890_mlp.py").write_bytes(b"old")
    (export / "smithjohn_LATE_12345_67890_mlp-1.py").write_bytes(reference)
    (export / "smithjohn_12345_67890_pset4.ipynb").write_text("{}")
    (export / "smithjohn_12345_67890_.DS_Store").write_text("junk")
    (export / "doejane_222_333_mlp.py").write_bytes(b"print('jane')")
    (export / "leeann_5_6_fully_conn.py").write_text("# fc")
    (export / "leeann_5_6_layer_utils.py").write_text("# lu")
    make_zip(export / "kimbo_7_8_submission.zip", {"hw/mlp.py": b"print('kim')"})
    (export / "syllabus.pdf").write_text("not a submission")
    found = discover_entries(export, MARKERS, KNOWN, tmp_path / "scratch")
    by_name = {e.name: e for e in found.entries}
    assert set(by_name) == {"smithjohn", "doejane", "leeann", "kimbo"}
    assert found.skipped == ["syllabus.pdf: not a submission folder, a .zip or a Canvas-named file"]
    smith = by_name["smithjohn"]
    assert tree(smith.path) == {"mlp.py": reference, "pset4.ipynb": b"{}"}
    assert smith.layout == "canvas" and not smith.error and len(smith.content_hash) == 64
    assert "smithjohn_LATE_12345_67890_mlp-1.py -> mlp.py" in smith.notes[0]
    assert "marked LATE by Canvas" in smith.notes
    assert any("smithjohn_12345_67890_mlp.py (an older upload of mlp.py)" in n for n in smith.notes)
    assert any("smithjohn_12345_67890_.DS_Store (not part of a submission)" in n for n in smith.notes)
    assert "marked LATE by Canvas" not in by_name["doejane"].notes
    # Canvas's user id (the first number) identifies the student in its grade import
    assert {e.name: e.canvas_id for e in found.entries} == {"smithjohn": "12345", "doejane": "222", "leeann": "5",
                                                            "kimbo": "7"}
    # and the prefix of its files names each student's feedback page for Canvas's re-upload
    assert {e.name: e.canvas_prefix for e in found.entries} == {
        "smithjohn": "smithjohn_12345_67890", "doejane": "doejane_222_333", "leeann": "leeann_5_6", "kimbo": "kimbo_7_8"}
    assert tree(by_name["leeann"].path) == {"lib/mlp/fully_conn.py": b"# fc", "lib/mlp/layer_utils.py": b"# lu"}
    assert tree(by_name["kimbo"].path) == {"mlp.py": b"print('kim')"}
    assert all(e.path.is_relative_to(tmp_path / "scratch") for e in found.entries)


def test_mixed_folder_zips_and_bad_zips_become_entries_with_reasons(tmp_path):
    root = tmp_path / "class"
    root.mkdir()
    (root / "alice").mkdir()
    (root / "alice" / "mlp.py").write_text("x")
    (root / "alice" / "__pycache__").mkdir()
    (root / "alice" / "__pycache__" / "mlp.pyc").write_text("x")
    make_zip(root / "bob.zip", {"mlp.py": b"y"})
    make_zip(root / "eve.zip", {"../../evil.py": b"z"})
    zip_bomb(root / "mallory.zip", 150 << 20)
    (root / "carol <x>").mkdir()
    (root / "carol <x>" / "mlp.py").write_text("c")
    (root / "carol_x").mkdir()
    (root / "carol_x" / "mlp.py").write_text("c2")
    found = discover_entries(root, MARKERS, KNOWN, tmp_path / "scratch")
    by_name = {e.name: e for e in found.entries}
    assert by_name["alice"].layout == "folder" and by_name["alice"].path == root / "alice"
    assert by_name["alice"].notes == ["ignored (not part of a submission): __pycache__/"]
    assert tree(by_name["bob"].path) == {"mlp.py": b"y"} and not by_name["bob"].error
    assert by_name["eve"].error.startswith("eve.zip: unsafe path '../../evil.py'")
    assert "zip bomb" in by_name["mallory"].error and len(by_name["mallory"].content_hash) == 64
    assert not (tmp_path / "evil.py").exists() and not (root / "evil.py").exists()
    # two names that map to one output folder get distinct folders
    assert {by_name["carol <x>"].out_name, by_name["carol_x"].out_name} == {"carol_x", "carol_x-2"}


def test_a_single_submission_folder_or_zip_is_one_entry(tmp_path):
    found = discover_entries(PSET4_FIXTURES / "correct_loops", MARKERS, KNOWN, tmp_path / "s1")
    assert [e.name for e in found.entries] == ["correct_loops"]
    archive = make_zip(tmp_path / "dan.zip", {"mlp.py": b"d"})
    found = discover_entries(archive, MARKERS, KNOWN, tmp_path / "s2")
    assert [(e.name, e.layout, e.error) for e in found.entries] == [("dan", "zip", "")]


def test_read_only_input_is_never_written(tmp_path):
    """Discovery reads the class folder; it writes only to the scratch folder."""
    root = tmp_path / "class"
    (root / "alice").mkdir(parents=True)
    (root / "alice" / "mlp.py").write_text("x")
    make_zip(root / "bob.zip", {"mlp.py": b"y"})
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*")}
    os.chmod(root, 0o555)
    try:
        discover_entries(root, MARKERS, KNOWN, tmp_path / "scratch")
    finally:
        os.chmod(root, 0o755)
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*")} == before
