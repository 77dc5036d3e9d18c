"""Submission layouts: how a learning-management system hands submissions over, turned into one
folder per student that the engine can grade.

* a folder per student (`alice/mlp.py`), or the folder of one submission itself;
* a `.zip` per student (`alice.zip`), extracted safely into a scratch folder: member-count and
  size limits checked on the bytes really written, no absolute paths or `..`, no symbolic
  links, compression-ratio limit against zip bombs. A zip that breaks a rule is not graded: it
  becomes a row with the reason;
* a flat Canvas export (`smithjohn_12345_67890_mlp.py`, `smithjohn_LATE_12345_67890_mlp-1.py`):
  grouped per student, the original names restored (Canvas's `-1` resubmission suffix removed,
  course files put back at their path, e.g. `fully_conn.py` -> `lib/mlp/fully_conn.py`); a
  file that is itself a zip is extracted like a zip submission.

Files a student should not hand in (`__MACOSX`, `.DS_Store`, `__pycache__`, `.pyc`, checkpoints)
are left out and listed in the submission's notes.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from grader.errors import GraderError
from grader.files import safe_name
from grader.submission import IGNORED_NAMES, MAX_FILE_BYTES, MAX_TOTAL_BYTES, load_submission

CANVAS_NAME = re.compile(r"^(?P<student>[A-Za-z0-9-]+?)(?P<late>_late)?_(?P<ids>\d+(?:_\d+)*)_(?P<name>.+)$",
                         re.IGNORECASE)
RESUBMISSION = re.compile(r"^(?P<stem>.+?)-(?P<n>\d+)(?P<ext>\.[^.]+)?$")
JUNK_SUFFIXES = (".pyc", ".pyo")


class UnsafeArchive(GraderError):
    """A zip the grader refuses to extract; the reason goes into the student's row."""


@dataclass(frozen=True)
class ZipLimits:
    max_members: int = 1000
    max_file_bytes: int = MAX_FILE_BYTES  # larger members are left out (and listed)
    max_total_bytes: int = MAX_TOTAL_BYTES  # more than this in all is refused as a zip bomb
    max_ratio: float = 200.0  # uncompressed/compressed, checked for members above ratio_floor
    ratio_floor: int = 1024**2


@dataclass
class Entry:
    """One student's submission as found on disk."""
    name: str  # the student, as the folder, zip or Canvas export names them
    path: Path  # the folder to grade (a scratch copy for zips and Canvas files)
    layout: str  # folder | zip | canvas
    notes: list[str] = field(default_factory=list)  # ignored files, restored names, late marker
    error: str = ""  # set when it cannot be read at all: graded as a row with this reason
    content_hash: str = ""  # Submission.content_hash, or the zip's own sha256 when it is unreadable
    out_name: str = ""  # its folder under the output folder: safe_name, unique in the batch
    canvas_id: str = ""  # Canvas's user id from the export's file names (for its grade import)
    late_marker: bool = False  # Canvas named a file _LATE_: late, by a time the export does not give
    late: dict = field(default_factory=dict)  # the late-policy decision (grader/latework/decide.py)
    # The export's name prefix (`smithjohn_12345_67890`, `_late` kept): what Canvas's "Re-Upload
    # Submissions" needs in a file's name to attach it to this student's submission
    canvas_prefix: str = ""


@dataclass
class Found:
    entries: list[Entry]
    skipped: list[str]  # top-level items that are no submission, with the reason


def is_junk(rel: str) -> bool:
    parts = PurePosixPath(rel).parts
    return any(p in IGNORED_NAMES or p.startswith("._") for p in parts) or rel.endswith(JUNK_SUFFIXES)


def discover_entries(path: Path, markers: tuple[str, ...], known_files: tuple[str, ...], scratch: Path,
                     limits: ZipLimits = ZipLimits()) -> Found:
    """Every submission under `path` (see the module docstring), zips and Canvas files
    materialised under `scratch`. `markers` are the files that identify a submission;
    `known_files` every course file path (to restore Canvas names)."""
    path = Path(path)
    if not path.exists():
        raise GraderError(f"no such file or folder: {path}")
    skipped: list[str] = []
    if path.is_file():
        if path.suffix.lower() != ".zip":
            raise GraderError(f"not a folder or a .zip: {path}")
        entries = [_zip_entry(path, path.stem, scratch / "zip", markers, limits)]
    elif any((path / m).exists() for m in markers):
        entries = [_folder_entry(path)]
    else:
        entries, canvas = [], {}
        for child in sorted(path.iterdir()):
            if child.name in IGNORED_NAMES or child.name.startswith("."):
                continue
            match = CANVAS_NAME.match(child.name) if child.is_file() else None
            if child.is_symlink():
                skipped.append(f"{child.name}: a symbolic link")
            elif child.is_dir():
                entries.append(_folder_entry(child))
            elif match:
                canvas.setdefault(match["student"].lower(), []).append(child)
            elif child.suffix.lower() == ".zip":
                entries.append(_zip_entry(child, child.stem, scratch / "zip", markers, limits))
            else:
                skipped.append(f"{child.name}: not a submission folder, a .zip or a Canvas-named file")
        for student, files in canvas.items():
            entries.append(_canvas_entry(student, files, scratch / "canvas", markers, known_files, limits))
        if not entries:
            raise GraderError(f"{path} holds no submission (folders, .zip files or a Canvas export) "
                              f"and none of {', '.join(markers)}")
    _assign_out_names(entries)
    return Found(entries, skipped)


def _assign_out_names(entries: list[Entry]) -> None:
    """safe_name can map two students to one folder ("a b", "a_b"): number the later ones."""
    used: set[str] = set()
    for entry in entries:
        base = name = safe_name(entry.name)
        n = 1
        while name in used:
            n += 1
            name = f"{base}-{n}"
        used.add(name)
        entry.out_name = name


def _hash_folder(entry: Entry) -> None:
    try:
        entry.content_hash = load_submission(entry.path).content_hash
    except GraderError as exc:
        entry.error = str(exc)


def _folder_entry(folder: Path) -> Entry:
    entry = Entry(folder.name, folder, "folder")
    junk = []
    for root, dirs, files in os.walk(folder):
        rel_root = Path(root).relative_to(folder)
        for d in sorted(dirs):
            if d in IGNORED_NAMES:
                junk.append((rel_root / d).as_posix() + "/")
        dirs[:] = [d for d in dirs if d not in IGNORED_NAMES]
        # only what load_submission really leaves out: other odd files are graded with the rest
        junk += [(rel_root / f).as_posix() for f in sorted(files) if f in IGNORED_NAMES]
    if junk:
        entry.notes.append(f"ignored (not part of a submission): {', '.join(junk[:20])}"
                           + (f" and {len(junk) - 20} more" if len(junk) > 20 else ""))
    _hash_folder(entry)
    return entry


def _extract_into(entry: Entry, archive: Path, dest: Path, markers: tuple[str, ...], limits: ZipLimits) -> bool:
    """Extract into dest; a refused archive marks the entry as a row with the reason (its hash is
    the archive's, so a re-run keeps that row until the archive changes)."""
    try:
        entry.notes += extract_zip(archive, dest, markers, limits)
        return True
    except GraderError as exc:
        entry.error = f"{archive.name}: {exc}"
        entry.content_hash = hashlib.sha256(archive.read_bytes()).hexdigest()
        return False


def _zip_entry(archive: Path, name: str, scratch: Path, markers: tuple[str, ...], limits: ZipLimits) -> Entry:
    dest = _fresh_dir(scratch, name)
    entry = Entry(name, dest, "zip")
    if _extract_into(entry, archive, dest, markers, limits):
        _hash_folder(entry)
    return entry


def _fresh_dir(scratch: Path, name: str) -> Path:
    folder = scratch / safe_name(name)
    n = 1
    while folder.exists():
        n += 1
        folder = scratch / f"{safe_name(name)}-{n}"
    folder.mkdir(parents=True)
    return folder


def extract_zip(archive: Path, dest: Path, markers: tuple[str, ...] = (), limits: ZipLimits = ZipLimits()) -> list[str]:
    """Extract `archive` into `dest` (which must be empty); returns notes on what was left out.
    Raises UnsafeArchive for a zip that is corrupt, encrypted, too big or tries to escape."""
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise UnsafeArchive(f"not a readable zip file ({exc})") from None
    with zf:
        members = zf.infolist()
        if len(members) > limits.max_members:
            raise UnsafeArchive(f"{len(members)} entries, more than the {limits.max_members} allowed")
        keep, left_out = _screen_members(members, limits)
        prefix = _wrapper_prefix([rel for rel, _ in keep], markers)
        written = 0
        for rel, info in keep:
            target = dest / rel[len(prefix):]
            target.parent.mkdir(parents=True, exist_ok=True)
            written += _copy_member(zf, info, target, limits, limits.max_total_bytes - written)
    notes = []
    if prefix:
        notes.append(f"zip: files taken from its folder {prefix}")
    if left_out:
        notes.append(f"zip: left out {', '.join(left_out[:20])}"
                     + (f" and {len(left_out) - 20} more" if len(left_out) > 20 else ""))
    return notes


def _screen_members(members: list[zipfile.ZipInfo], limits: ZipLimits) -> tuple[list[tuple[str, zipfile.ZipInfo]], list[str]]:
    """The members to extract, and what is left out with the reason; raises for hostile ones."""
    keep, left_out, declared = [], [], 0
    for info in members:
        rel = info.filename.replace("\\", "/")
        parts = PurePosixPath(rel).parts
        if rel.startswith("/") or re.match(r"^[A-Za-z]:", rel) or ".." in parts:
            raise UnsafeArchive(f"unsafe path {info.filename!r} (absolute or with '..'): refused")
        if info.flag_bits & 0x1:
            raise UnsafeArchive("password-protected: cannot be read")
        if info.is_dir():
            continue
        if stat.S_ISLNK(info.external_attr >> 16):
            left_out.append(f"{rel} (symbolic link)")
            continue
        if is_junk(rel):
            left_out.append(f"{rel} (not part of a submission)")
            continue
        if info.file_size > limits.ratio_floor and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            raise UnsafeArchive(f"{rel} expands {info.file_size / max(info.compress_size, 1):.0f}-fold "
                                f"(a zip bomb?): refused")
        if info.file_size > limits.max_file_bytes:  # a big data file, say: not extracted, listed
            left_out.append(f"{rel} (too large: {info.file_size} bytes)")
            continue
        declared += info.file_size
        if declared > limits.max_total_bytes:
            raise UnsafeArchive(f"more than {limits.max_total_bytes} bytes when extracted (a zip bomb?): refused")
        keep.append((rel, info))
    return keep, left_out


def _wrapper_prefix(paths: list[str], markers: tuple[str, ...]) -> str:
    """Students often zip the folder, not its contents: 'alice/mlp.py'. The folder that holds a
    marker file is the submission's root when everything is inside it."""
    if not paths or any(p in markers for p in paths):
        return ""
    prefixes = sorted((p[:-len(m)] for p in paths for m in markers if p.endswith("/" + m)), key=len)
    if prefixes and all(p.startswith(prefixes[0]) for p in paths):
        return prefixes[0]
    return ""


def _copy_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, limits: ZipLimits, budget: int) -> int:
    """Copy one member counting the bytes really produced: a forged header cannot lie past the limits."""
    allowed = min(limits.max_file_bytes, budget)
    written = 0
    try:
        with zf.open(info) as src, target.open("xb") as out:
            while chunk := src.read(1 << 16):
                written += len(chunk)
                if written > allowed:
                    raise UnsafeArchive(f"{info.filename} holds more than its header says (a zip bomb?): refused")
                out.write(chunk)
    except (zipfile.BadZipFile, EOFError, OSError, NotImplementedError, RuntimeError) as exc:
        raise UnsafeArchive(f"{info.filename} cannot be extracted ({exc})") from None
    return written


# ---------------------------------------------------------------- Canvas

def canvas_original_name(filename: str, known_files: tuple[str, ...]) -> tuple[str, bool, int] | None:
    """(restored relative path, late, resubmission number) of a Canvas-named file, or None."""
    match = CANVAS_NAME.match(filename)
    if not match:
        return None
    name, number = match["name"], 0
    by_basename: dict[str, set[str]] = {}
    for known in known_files:
        by_basename.setdefault(PurePosixPath(known).name, set()).add(known)
    resub = RESUBMISSION.match(name)
    if name not in by_basename and resub and f"{resub['stem']}{resub['ext'] or ''}" in by_basename:
        name, number = f"{resub['stem']}{resub['ext'] or ''}", int(resub["n"])
    places = by_basename.get(name, set())
    return (next(iter(places)) if len(places) == 1 else name), bool(match["late"]), number


def _canvas_entry(student: str, files: list[Path], scratch: Path, markers: tuple[str, ...],
                  known_files: tuple[str, ...], limits: ZipLimits) -> Entry:
    dest = _fresh_dir(scratch, student)
    entry = Entry(student, dest, "canvas")
    chosen: dict[str, tuple[int, Path]] = {}
    late, renamed, left_out = False, [], []
    for file in files:
        rel, is_late, number = canvas_original_name(file.name, known_files)  # type: ignore[misc]
        # `<student>[_LATE]_<user id>_<submission id>_<name>`: the first number is the user's id
        entry.canvas_id = entry.canvas_id or CANVAS_NAME.match(file.name)["ids"].split("_")[0]  # type: ignore[index]
        named = CANVAS_NAME.match(file.name)
        entry.canvas_prefix = entry.canvas_prefix or f"{named['student']}{named['late'] or ''}_{named['ids']}"  # type: ignore[index]
        late |= is_late
        if is_junk(rel):
            left_out.append(f"{file.name} (not part of a submission)")
        elif rel in chosen and chosen[rel][0] >= number:
            left_out.append(f"{file.name} (an older upload of {rel})")
        else:
            if rel in chosen:
                left_out.append(f"{chosen[rel][1].name} (an older upload of {rel})")
            chosen[rel] = (number, file)
    # zips first: a file uploaded on its own replaces the same file inside a zip
    for rel, (_, file) in sorted(chosen.items(), key=lambda kv: (not kv[0].lower().endswith(".zip"), kv[0])):
        if rel.lower().endswith(".zip"):
            if not _extract_into(entry, file, dest, markers, limits):
                return entry
            continue
        if file.stat().st_size > limits.max_file_bytes:
            left_out.append(f"{file.name} (too large: {file.stat().st_size} bytes)")
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.unlink(missing_ok=True)
        shutil.copyfile(file, target)
        renamed.append(f"{file.name} -> {rel}")
    entry.notes.insert(0, f"Canvas export: {'; '.join(renamed) or 'no files'}")
    if late:
        entry.notes.append("marked LATE by Canvas")
        entry.late_marker = True
    if left_out:
        entry.notes.append(f"left out: {', '.join(left_out)}")
    _hash_folder(entry)
    return entry
