"""What a probe's runner imports before it forks the tasks: the heavy libraries the code under
test imports itself (a forked task inherits them), and nothing the submission could shadow."""
from __future__ import annotations

from grader.grading.preload import modules_to_preload

from conftest import REPO


def test_the_references_get_what_their_code_imports():
    assert modules_to_preload(REPO / "reference" / "pset4") == ("numpy", "matplotlib", "matplotlib.pyplot")
    assert modules_to_preload(REPO / "reference" / "a1") == ("numpy",)  # matplotlib only in its notebook
    assert modules_to_preload(REPO / "reference" / "modular") == ("numpy",)


def test_every_import_form_run_at_import_is_found(tmp_path):
    (tmp_path / "mlp.py").write_text("try:\n    from matplotlib import pyplot as plt\nexcept ImportError:\n    pass\n"
                                     "class Net:\n    import scipy.special\n"
                                     "def load():\n    import sklearn.datasets  # only if called: not preloaded\n")
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "util.py").write_text("import pandas as pd, json\nfrom . import numpy\n")
    assert modules_to_preload(tmp_path) == ("numpy", "scipy", "pandas", "matplotlib", "matplotlib.pyplot")


def test_unknown_shadowed_and_unparsable_code_adds_nothing(tmp_path):
    (tmp_path / "mlp.py").write_text("import torch, requests\nimport pandas\n")
    (tmp_path / "pandas.py").write_text("")  # the student's own pandas: theirs to import
    (tmp_path / "broken.py").write_text("import scipy\ndef f(:\n")
    assert modules_to_preload(tmp_path) == ("numpy",)
