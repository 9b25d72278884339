"""``mtl-course grade`` end to end: exact scores, and every known attack on the grader in one run.

Each submission is built from the solution or the released sheet by replacing
answer cells. Every grading run starts Jupyter kernels in bubblewrap
sandboxes, so the tests share this file (one xdist worker) and the attacks of
issue 13 are graded together, with an honest full and an honest partial
submission, in **one** ``mtl-course grade`` command; the honest two are then
graded alone and must get the same rows and the same feedback.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from mtl_course.cli import main
from mtl_course.grading.format import answer_id
from mtl_course.notebooks import course_root

ROOT = course_root()
SHEET = "01_lasso_inductive_bias"
SOLUTION = ROOT / "solutions" / f"{SHEET}.ipynb"
EXERCISE = ROOT / "exercises" / f"{SHEET}.ipynb"


def _with_answers(base: Path, **answers: str) -> nbformat.NotebookNode:
    """``base`` with the sources of some answer cells replaced (keys: ``ex1_1`` for answer ``ex1.1``)."""
    nb = nbformat.read(base, as_version=4)
    for key, source in answers.items():
        cell = next(c for c in nb.cells if answer_id(c) == key.replace("_", "."))
        cell.source = textwrap.dedent(source).strip()
    return nb


def _solution_answer(answer: str) -> str:
    nb = nbformat.read(SOLUTION, as_version=4)
    return next(c.source for c in nb.cells if answer_id(c) == answer)


def _write(folder: Path, student: str, nb: nbformat.NotebookNode | bytes) -> Path:
    path = folder / student / f"{SHEET}.ipynb"
    path.parent.mkdir(parents=True)
    if isinstance(nb, bytes):
        path.write_bytes(nb)
    else:
        nbformat.write(nb, path)
    return path


def _snapshot(folder: Path) -> dict[Path, tuple[bytes, int]]:
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


def _grade(submissions: Path, out: Path, *options: str) -> pd.DataFrame:
    """Grade through the command line, as the README says; check that no submission changed."""
    before = _snapshot(submissions)
    limits = ["--timeout", "50", "--cell-timeout", "20", "--memory-mb", "1024", "--jobs", "2"]
    assert main(["grade", str(submissions), "--out", str(out), *limits, *options]) == 0
    assert _snapshot(submissions) == before, "grading modified a submission"
    return pd.read_csv(out / "gradebook.csv", index_col="student", keep_default_na=False)


@pytest.mark.slow
def test_solution_full_marks_exercise_zero_partials_exact(tmp_path: Path) -> None:
    subs = tmp_path / "submissions"
    wrong_alpha = "def lasso_alpha_max(X, y):\n    return float(np.max(np.abs(X.T @ y)))  # forgot the 1/n"
    wrong_first = _solution_answer("ex1.3").replace("int(np.argmax(", "int(np.argmin(")
    _write(subs, "solution", nbformat.read(SOLUTION, as_version=4))
    _write(subs, "released", nbformat.read(EXERCISE, as_version=4))
    _write(subs, "only_1_1", _with_answers(EXERCISE, ex1_1=_solution_answer("ex1.1")))
    _write(subs, "wrong_1_2", _with_answers(SOLUTION, ex1_2=wrong_alpha))
    _write(subs, "wrong_first", _with_answers(SOLUTION, ex1_3=wrong_first))
    book = _grade(subs, tmp_path / "out")
    expected = {  # student: (ex1.1, ex1.2, ex1.3, total)
        "solution": (3, 3, 3, 9),
        "released": (0, 0, 0, 0),
        "only_1_1": (3, 0, 0, 3),
        "wrong_1_2": (3, 0, 3, 6),
        "wrong_first": (3, 3, 1, 7),
    }
    got = {s: tuple(int(book.loc[s, c]) for c in ("ex1.1", "ex1.2", "ex1.3", "total")) for s in expected}
    assert got == expected
    assert set(book["status"]) == {"ok"} and set(book["max"]) == {9}
    feedback = (tmp_path / "out" / "feedback" / "wrong_1_2" / f"{SHEET}.md").read_text()
    assert "**FAIL** ex1.2 lasso_alpha_max brackets the all-zero lasso on diabetes: 0/2" in feedback
    assert "at 1.001 times that value the lasso is still" not in feedback  # too large, not too small
    assert "at 0.999 times that value the lasso is still all zero: too large" in feedback
    assert "lasso_alpha_max(X, y) on diabetes (within 0.1%): expected" in feedback  # the grader's own comparison


FORGE = """
    import builtins, json, os, signal

    def compile(source, *args, **kwargs):  # the old grader exec'd compile(pristine checks) from the namespace
        return builtins.compile("print('ex1.1 soft_threshold against the piecewise formula: PASS 2/2')", "x", "exec")

    print("@@MTL_COURSE_NONCE_0@@ @@MTL_COURSE_NONCE_1@@")  # the old placeholders: nothing is substituted now
    with open(os.environ["MTL_COURSE_VALUES"], "a") as record:
        entry = {"exercise": "ex1.1", "name": "soft_threshold against the piecewise formula", "kind": "close",
                 "what": "soft_threshold(3.0, 1.0)", "n": 1, "got": {"type": "array", "shape": [], "data": [2.0]},
                 "verdict": "PASS", "earned": 2, "points": 2}
        record.write(json.dumps(entry) + "\\n" + "x" * 2_000_000 + "\\n")
    open("junit.xml", "w").write('<testsuite><testcase name="Cell 0"/><testcase name="Cell 1"/></testsuite>')
    os.kill(os.getppid(), signal.SIGKILL)  # kill nbval's pytest, leaving the fake report
"""
DETACH_AND_TAMPER = """
    import os, subprocess, sys
    later = (
        "import glob, pathlib, time\\n"
        "time.sleep(3)\\n"
        "for path in glob.glob('/tmp/mtl-grade-*/values.jsonl'):\\n"
        "    open(path, 'a').write('forged')\\n"
        "pathlib.Path({out!r}, 'gradebook.csv').write_text('student,total\\\\nforger,999\\\\n')\\n"
        "time.sleep(600)\\n"
    )
    subprocess.Popen([sys.executable, "-c", later, "mtl-attack-marker"], start_new_session=True, env={{}},
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for target in {targets!r}:
        try:
            with open(target, "a") as f:
                f.write("print('tampered')")
        except OSError as error:
            print("blocked:", target, type(error).__name__)
"""
FLOAT_SUBCLASS = """
    class SneakyFloat(float):
        def __sub__(self, other):
            return 0.0
        __rsub__ = __sub__
        def __eq__(self, other):
            return True
        __hash__ = float.__hash__
        def __abs__(self):
            return 0.0

    def soft_threshold(z, t):
        return SneakyFloat(0.0) if np.ndim(z) == 0 else np.full(np.shape(z), SneakyFloat(0.0), dtype=object)
"""
FAKE_ALLCLOSE = """
    np.allclose = lambda *args, **kwargs: True
    np.isclose = lambda *args, **kwargs: True

    def lasso_alpha_max(X, y):
        return 1.0
"""
ALWAYS_EQUAL = """
    class Names(list):
        def __eq__(self, other):
            return True
        __hash__ = None

    class Name(str):
        def __eq__(self, other):
            return True
        __hash__ = str.__hash__

    selected = Names(["age"])
    first_feature = Name("age")
"""
LOOP = "while True:\n    pass"
DEAF_LOOP = """
    import signal, time
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        time.sleep(0.01)
"""
#: Folder name -> the student id the grader gives it.
IDS = {
    '=HYPERLINK("x","y")': "HYPERLINK__x___y__",
    "-2-3": "2-3",
    "ana\x1b[31m\nbob": "ana__31m_bob",
    "a b": "a_b",
    "a_b": "a_b-2",  # "a b" sorts first and keeps the plain id
}


def _tree_digest() -> str:
    """A hash of every file of the course that git tracks, and of what git says changed."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0")
    digest = hashlib.sha256()
    for name in filter(None, files):
        path = ROOT / name.decode()
        digest.update(name + b"\0" + (path.read_bytes() if path.is_file() else b"<missing>"))
    status = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, check=True).stdout
    return digest.hexdigest() + status.decode()


def _marked_processes() -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and b"mtl-attack-marker" in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _row(book: pd.DataFrame, student: str) -> tuple:
    return tuple(book.loc[student, c] for c in ("status", "ex1.1", "ex1.2", "ex1.3", "total", "flags"))


def _attacks(out: Path) -> dict[str, tuple[nbformat.NotebookNode | bytes, str, tuple[int, int, int, int]]]:
    """Folder name -> (submission, status, (ex1.1, ex1.2, ex1.3, total)), for every attack of issue 13."""
    targets = [str(ROOT / "mtl_course" / "grading" / "nbval_plugin.py"), str(ROOT / "mtl_course" / "__init__.py")]
    targets += [str(SOLUTION), str(ROOT / "solutions" / "02_why_mtl_works.ipynb")]
    debug = _solution_answer("ex1.1").replace(
        "    ### BEGIN SOLUTION",
        '    print("debug:", z, t)\n    import sys\n    print("to stderr", file=sys.stderr)\n    ### BEGIN SOLUTION',
    )
    duplicated = nbformat.read(EXERCISE, as_version=4)
    stub = next(c for c in duplicated.cells if answer_id(c) == "ex1.1")
    duplicated.cells += [nbformat.v4.new_code_cell(stub.source, metadata=dict(stub.metadata)) for _ in range(3000)]
    good = SOLUTION.read_bytes()
    tamper = DETACH_AND_TAMPER.format(out=str(out), targets=targets)
    fakes = {"ex1_1": FLOAT_SUBCLASS, "ex1_2": FAKE_ALLCLOSE, "ex1_3": ALWAYS_EQUAL}
    format_only = 'selected = feature_names[:4]\nfirst_feature = "age"'
    lying = 'raise MemoryError("Timeout of 60 seconds exceeded; kernel died")'
    slow = {f"ex1_{k}": _solution_answer(f"ex1.{k}") + "\nimport time\ntime.sleep(16)" for k in (1, 2, 3)}
    bomb = "blocks = [bytearray(10**8) for _ in range(10**3)]"
    kill9 = "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"
    return {
        "forger": (_with_answers(EXERCISE, ex1_1=FORGE), "crashed", (0, 0, 0, 0)),
        "tamperer": (_with_answers(EXERCISE, ex1_1=tamper), "ok", (0, 0, 0, 0)),
        "faker": (_with_answers(EXERCISE, **fakes), "ok", (0, 0, 0, 0)),
        "format_only": (_with_answers(SOLUTION, ex1_3=format_only), "ok", (3, 3, 0, 6)),
        "duplicates": (duplicated, "ok", (0, 0, 0, 0)),
        "exception_text": (_with_answers(SOLUTION, ex1_2=lying), "ok", (3, 0, 3, 6)),
        "debug_print": (_with_answers(SOLUTION, ex1_1=debug), "ok", (3, 3, 3, 9)),
        "loop": (_with_answers(SOLUTION, ex1_2=LOOP), "ok", (3, 0, 3, 6)),
        "deaf_loop": (_with_answers(SOLUTION, ex1_3=DEAF_LOOP), "crashed", (3, 3, 0, 6)),  # nbval kills the kernel
        "slow": (_with_answers(SOLUTION, **slow), "timeout", (3, 3, 0, 6)),  # each cell in time, the run not
        "memory_bomb": (_with_answers(SOLUTION, ex1_3=bomb), "memory", (3, 3, 0, 6)),
        "kill9": (_with_answers(SOLUTION, ex1_3=kill9), "crashed", (3, 3, 0, 6)),
        "exit": (_with_answers(SOLUTION, ex1_2="import os\nos._exit(1)"), "crashed", (3, 0, 0, 3)),
        '=HYPERLINK("x","y")': (good[: len(good) // 2], "malformed", (0, 0, 0, 0)),
        "-2-3": (b"\x00\xff not a notebook", "malformed", (0, 0, 0, 0)),
        "ana\x1b[31m\nbob": (b"{}", "malformed", (0, 0, 0, 0)),
        "a b": (b"[]", "malformed", (0, 0, 0, 0)),
        "a_b": (b"null", "malformed", (0, 0, 0, 0)),
    }


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("bwrap") is None and os.environ.get("CI") != "true",  # under CI a missing bwrap fails the test
    reason="bubblewrap is not installed (apt install bubblewrap)",
)
def test_every_attack_in_one_run_earns_nothing_and_harms_no_one(tmp_path: Path) -> None:
    subs, out = tmp_path / "submissions", tmp_path / "out"
    long_name = "honest_partial_" + "x" * 235
    ids = {**IDS, long_name: long_name[:64]}
    wrong_alpha = "def lasso_alpha_max(X, y):\n    return float(np.max(np.abs(X.T @ y)))  # forgot the 1/n"
    cases = {
        "honest_full": (nbformat.read(SOLUTION, as_version=4), "ok", (3, 3, 3, 9)),
        long_name: (_with_answers(SOLUTION, ex1_2=wrong_alpha), "ok", (3, 0, 3, 6)),
        **_attacks(out),
    }
    for folder, (submission, _, _) in cases.items():
        _write(subs, folder, submission)
    (subs / "honest_full" / "Untitled.ipynb").write_bytes(SOLUTION.read_bytes())  # a stray notebook
    (subs / "symlinked").mkdir()
    (subs / "symlinked" / f"{SHEET}.ipynb").symlink_to(SOLUTION)
    (subs / ".ipynb_checkpoints").mkdir()
    (subs / ".ipynb_checkpoints" / f"{SHEET}.ipynb").write_bytes(SOLUTION.read_bytes())
    tree = _tree_digest()

    book = _grade(subs, out)

    assert _tree_digest() == tree, "grading changed the course"
    assert not _marked_processes(), "a process started by a submission outlived the run"
    points = ("ex1.1", "ex1.2", "ex1.3", "total")
    got = {
        f: (book.loc[ids.get(f, f), "status"], tuple(int(book.loc[ids.get(f, f), c]) for c in points)) for f in cases
    }
    assert got == {f: (status, scores) for f, (_, status, scores) in cases.items()}
    assert len(book) == len(cases) and "symlinked" not in book.index and "Untitled" not in book.index
    flags = book["flags"].to_dict()
    assert flags["honest_full"] == flags["debug_print"] == "" and flags[long_name[:64]] == "renamed"
    assert flags["a_b"] == "renamed" and flags["a_b-2"] == "id-collision"
    assert flags["duplicates"] == "duplicate-answer"
    text = (out / "gradebook.csv").read_text()
    assert "\x1b" not in text and "forger,999" not in text and len(text.splitlines()) == len(cases) + 1
    assert all(line[:1] not in "=+-@" for line in text.splitlines())

    def feedback(student: str, folder: Path = out) -> str:
        return (folder / "feedback" / student / f"{SHEET}.md").read_text()

    assert "**Score: 9 / 9**" in feedback("honest_full") and "**Score: 9 / 9**" in feedback("debug_print")
    assert "PASS" not in feedback("forger").replace("**PASS**", "")
    assert "your answer cell for ex1.2 raised MemoryError" in feedback("exception_text")
    assert "ran past the limit of 20 s per cell" in feedback("loop") and "NameError" not in feedback("loop")
    assert "ran past the limit of 20 s per cell" in feedback("deaf_loop")
    assert "ran past the time limit of 50 s" in feedback("slow")
    assert "used more than 1024 MiB of memory" in feedback("memory_bomb")
    assert "stopped before the end" in feedback("kill9") and "the kernel ended with signal 9" in feedback("kill9")
    assert "set(selected): expected ['bmi', 'bp', 's3', 's5'], got ['age', 'bmi', 'bp', 'sex']" in feedback(
        "format_only"
    )
    assert "first_feature: expected 'bmi', got 'age'" in feedback("faker")  # the str subclass's real text

    # the honest two, graded alone, get the same rows and the same feedback
    alone = tmp_path / "alone"
    for folder in ("honest_full", long_name):
        shutil.copytree(subs / folder, alone / folder)
    (alone / "honest_full" / "Untitled.ipynb").unlink()
    book_alone = _grade(alone, tmp_path / "out_alone")
    for student in ("honest_full", long_name[:64]):
        assert _row(book_alone, student) == _row(book, student)
        assert feedback(student) == feedback(student, tmp_path / "out_alone")
