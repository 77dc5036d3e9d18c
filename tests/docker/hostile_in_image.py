"""Runs INSIDE the test stage of the image (see offline_image.py): grades a few hostile
submissions from tests/fixtures/hostile/ through the installed grader's library API, at the
strongest sandbox level the image offers, and writes what each one managed as JSON. It decides
nothing: the host script judges the observations against the level that was used.

    python3 hostile_in_image.py HOSTILE_FIXTURES OUT_JSON

The attacks: tamper with a neighbour (another submission, a graded result, the output folder),
connect to a listener this script opens on 127.0.0.1, search the disk for the reference
solution (told where the installed course package is), and kill the process running the probe.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import sys
import tempfile
import threading
from pathlib import Path

import grader_course
from grader.grading.engine import GradeOptions, Grader

# As tests/test_hostile.py: the offline digits data, the training-on-data checks skipped.
OPTIONS = GradeOptions(dataset="digits", skip_data=True)


def submission(fixtures: Path, work: Path, attack: str, **files: str) -> Path:
    dest = work / attack
    shutil.copytree(fixtures / attack, dest)
    shutil.copy(fixtures / "_base" / "mlp_base.py", dest)
    for name, text in files.items():
        (dest / name).write_text(text)
    return dest


def correct(fixtures: Path, work: Path, name: str) -> Path:
    dest = work / name
    dest.mkdir()
    shutil.copy(fixtures / "_base" / "mlp_base.py", dest / "mlp.py")
    return dest


def observed(result) -> dict | None:
    """What the attack reported from predict() (the OBSERVED line of the check's traceback)."""
    for check in result.checks():
        for line in reversed(check.details.get("error", "").splitlines()):
            if "OBSERVED " in line:
                return json.loads(line.split("OBSERVED ", 1)[1])
    return None


def summary(result) -> dict:
    return {"points": result.autograded_points, "sandbox": result.sandbox, "observed": observed(result),
            "statuses": {c.id: c.status for c in result.checks()}}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Listener:
    """A TCP listener on 127.0.0.1 that records what any connection sends."""

    def __init__(self) -> None:
        self.accepted: list[str] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(4)
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self.port = self._sock.getsockname()[1]

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    self.accepted.append(conn.recv(16).decode("latin-1"))
                except OSError:
                    self.accepted.append("")

    def __enter__(self) -> "Listener":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()


def main(fixtures: Path, out_json: Path) -> None:
    work = Path(tempfile.mkdtemp(prefix="hostile-"))
    report: dict = {"uid": os.getuid(), "interfaces": [name for _, name in socket.if_nameindex()]}
    with Grader("pset4", OPTIONS) as grader:
        # A neighbour: another student's folder, an output folder with an already graded result.
        victim = correct(fixtures, work, "victim")
        out_dir = work / "out"
        (out_dir / "early").mkdir(parents=True)
        graded = out_dir / "early" / "result.json"
        graded.write_text('{"autograded_points": 25}')
        before = {"victim/mlp.py": digest(victim / "mlp.py"), "graded_result": digest(graded)}
        targets = {"victim": str(victim), "graded_result": str(graded), "out_dir": str(out_dir)}
        tamper = summary(grader.grade(submission(fixtures, work, "tamper_other",
                                                 **{"targets.json": json.dumps(targets)})))
        tamper["victim_points_after"] = grader.grade(victim).autograded_points
        tamper["unchanged"] = (digest(victim / "mlp.py") == before["victim/mlp.py"]
                               and digest(graded) == before["graded_result"])
        tamper["victim_files"] = sorted(p.name for p in victim.iterdir())
        tamper["out_dir_files"] = sorted(p.name for p in out_dir.iterdir())
        report["tamper_other"] = tamper

        with Listener() as listener:
            network = summary(grader.grade(submission(fixtures, work, "network",
                                                      **{"port.txt": str(listener.port)})))
        network["accepted"] = listener.accepted
        report["network"] = network

        # Told where the installed course package (with the reference solution) really is.
        hint = os.path.dirname(os.path.abspath(grader_course.__file__))
        report["search_reference"] = {**summary(grader.grade(submission(fixtures, work, "search_reference",
                                                                        **{"hint.txt": hint}))),
                                      "hint": hint}

        kill = summary(grader.grade(submission(fixtures, work, "kill_parent")))
        # This process is the grader: that it is still here to grade the next one is the point.
        kill["next_submission_points"] = grader.grade(correct(fixtures, work, "after_kill")).autograded_points
        report["kill_parent"] = kill
    out_json.write_text(json.dumps(report, indent=1, sort_keys=True))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
