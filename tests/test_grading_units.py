"""The grading system without notebooks: sheet format, release, values and comparisons, ids, gradebook, sandbox."""

from __future__ import annotations

import copy
import csv
import dataclasses
import io
import os
import re
import shutil
import sys
import textwrap
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest
from test_grading_end_to_end import ALWAYS_EQUAL, FLOAT_SUBCLASS

from mtl_course.cli import main
from mtl_course.grading import checks, sandbox
from mtl_course.grading.format import BEGIN_SOLUTION, SheetFormatError, cell_role, parse_sheet
from mtl_course.grading.grade import (
    GradingError,
    Instructor,
    NotebookRun,
    check_out,
    find_submissions,
    grade,
    graded_notebook,
    read_values,
    score,
)
from mtl_course.grading.gradebook import CheckResult, SubmissionResult, feedback_markdown, gradebook_csv, write_results
from mtl_course.grading.release import release, release_notebook
from mtl_course.grading.sandbox import Limits, RunOutcome, run_limited
from mtl_course.notebooks import course_root

ROOT = course_root()
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))


def _solution(name: str = "01_lasso_inductive_bias.ipynb") -> nbformat.NotebookNode:
    return nbformat.read(ROOT / "solutions" / name, as_version=4)


# -- the sheets -------------------------------------------------------------------
@pytest.mark.parametrize("path", SOLUTIONS, ids=[p.name for p in SOLUTIONS])
def test_every_solution_follows_the_sheet_format(path: Path) -> None:
    sheet = parse_sheet(nbformat.read(path, as_version=4), path.stem)
    assert len(sheet.exercises) >= 2 and any(c.hidden for c in sheet.checks)
    for exercise in sheet.exercises:
        assert any(not c.hidden for c in sheet.checks if c.exercise == exercise), f"{exercise} has no visible check"


def test_exercises_are_up_to_date(tmp_path: Path) -> None:
    release(ROOT / "solutions", tmp_path)
    expected = sorted(p.name for p in tmp_path.glob("*.ipynb"))
    committed = sorted(p.name for p in (ROOT / "exercises").glob("*.ipynb"))
    assert committed == expected, "exercises/ and solutions/ hold different sheets: run `mtl-course release`"
    for name in expected:
        assert (ROOT / "exercises" / name).read_text() == (tmp_path / name).read_text(), (
            f"exercises/{name} is out of date with solutions/{name}: run `mtl-course release`"
        )


def test_cli_release_and_grade_errors(tmp_path: Path, capsys) -> None:
    assert main(["release", "--exercises", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [p.name for p in SOLUTIONS]
    assert main(["grade", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")]) == 1
    assert "no such submission" in capsys.readouterr().err


def test_release_stubs_answers_drops_hidden_checks_and_outputs() -> None:
    nb = _solution()
    released = release_notebook(nb, "sheet")
    assert nb == _solution(), "release modified its input"
    text = nbformat.writes(released)
    assert "BEGIN SOLUTION" not in text and "np.maximum(np.abs(z) - t" not in text
    assert not any(cell_role(c).get("hidden") for c in released.cells)
    code = [c for c in released.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    stub = next(c.source for c in code if cell_role(c).get("answer") == "ex1.1")
    assert stub.startswith('def soft_threshold(z, t):\n    """') and 'raise NotImplementedError("ex1.1' in stub


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda nb: nb.cells[4].metadata["mtl_course"].update(points=0), "positive integer"),
        (lambda nb: nb.cells[7].metadata.update(mtl_course={"answer": "ex1.1"}), "more than one cell"),
        (lambda nb: setattr(nb.cells[3], "source", nb.cells[3].source.replace(BEGIN_SOLUTION, "")), "needs one"),
        (lambda nb: setattr(nb.cells[4], "outputs", []), "PASS 2/2"),
        (lambda nb: nb.cells.insert(5, copy.deepcopy(nb.cells[4])), "share an exercise id and a name"),
    ],
)
def test_sheet_format_errors_say_what_is_wrong(damage, message: str) -> None:
    nb = copy.deepcopy(_solution())
    damage(nb)
    with pytest.raises(SheetFormatError, match=message):
        parse_sheet(nb, "sheet")


@pytest.mark.parametrize("path", SOLUTIONS, ids=[p.name for p in SOLUTIONS])
def test_every_exercise_heading_splits_its_points_into_visible_and_hidden(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    sheet = parse_sheet(nb, path.stem)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    for exercise in sheet.exercises:
        visible = sum(c.points for c in sheet.checks if c.exercise == exercise and not c.hidden)
        hidden = sum(c.points for c in sheet.checks if c.exercise == exercise and c.hidden)
        heading = re.search(rf"^## Exercise {re.escape(exercise[2:])} .*$", text, re.MULTILINE)
        assert heading, f"{path.name}: no heading for {exercise}"
        assert f"{visible + hidden} points: {visible} visible + {hidden} hidden)" in heading[0], heading[0]


# -- the check cells: self-check, values as plain data, comparisons --------------------
def test_self_check_lists_every_failure_and_catches_student_errors(capsys) -> None:
    def broken(x):
        raise ZeroDivisionError("oops")

    with checks.check("ex9.1", "shape", points=1) as c:
        c.close([1.0, 2.0], [1.0, 2.0, 3.0], what="f([1, 2, 3])")
        c.close([2.0, 4.0], [1.0, 2.0], what="g([1, 2])")
    with checks.check("ex9.2", "crash", points=2) as c:
        c.close(broken(1), 1.0, what="broken(1)")
    with checks.check("ex9.3", "stub", points=3) as c:
        raise NotImplementedError("ex9.3: replace this line")
    with checks.check("ex9.4", "graded later", points=1) as c:
        c.close(1.0, what="h()")
    out = capsys.readouterr().out.splitlines()
    assert out[:2] == ["ex9.1 shape: FAIL 0/1", "  f([1, 2, 3]): expected shape (3,), got shape (2,)"]
    assert out[2].startswith("  g([1, 2]): expected [1., 2.], got [2., 4.]") and "2 times the expected" in out[2]
    assert out[3:5] == ["ex9.2 crash: FAIL 0/2", "  your code raised ZeroDivisionError: oops"]
    assert out[5] == "ex9.3 stub: FAIL 0/3" and "not implemented yet" in out[6]
    assert out[7:] == [
        "ex9.4 graded later: PASS 1/1",
        "  (when grading, 1 more value(s) are compared with the solution's)",
    ]


def test_close_pins_its_default_tolerance() -> None:
    """Values just inside ``rtol`` = 1e-6 pass, just outside fail (about 57 sheet checks use the default)."""
    assert (checks.RTOL, checks.ATOL) == (1e-6, 1e-9)
    expected = np.array([1.0, -250.0, 1e4])
    inside = expected * (1 + 0.9e-6)
    outside = expected.copy()
    outside[2] *= 1 + 1.2e-6
    assert checks.compare("close", inside, expected, "f") == ""
    assert "largest difference" in checks.compare("close", outside, expected, "f")
    assert checks.compare("close", np.array(0.5e-9), np.array(0.0), "f") == ""
    assert checks.compare("close", np.array(2e-9), np.array(0.0), "f") != ""


def _attackers_classes() -> dict:
    """The fake value classes of the end-to-end attacks (one source for both tests)."""
    namespace = {"np": np}
    exec(textwrap.dedent(FLOAT_SUBCLASS) + textwrap.dedent(ALWAYS_EQUAL), namespace)
    return namespace


def test_values_cross_as_plain_data_and_fakes_do_not_compare_equal(tmp_path: Path, monkeypatch) -> None:
    values = tmp_path / "values.jsonl"
    monkeypatch.setenv(checks.VALUES_ENV, str(values))
    fakes = _attackers_classes()
    with checks.check("ex9.5", "fakes", points=1) as c:
        c.close(fakes["SneakyFloat"](3.0), 2.0, what="sneaky float")
        c.equal(fakes["Name"]("age"), "bmi", what="always-equal str")
        c.equal(fakes["Names"](["age"]), ["bmi"], what="always-equal list")
        c.equal(object(), 2, what="an object")
        c.close(np.float64(2.0), what="plain")
        c.permutation(np.array([[2.0], [1.0]]), np.array([[1.0], [2.0]]), what="swap")
    recorded = read_values(values)
    whats = ("sneaky float", "always-equal str", "always-equal list", "an object", "plain", "swap")
    assert set(recorded) == {("ex9.5", "fakes", w, 1) for w in whats}
    assert recorded["ex9.5", "fakes", "sneaky float", 1]["got"] == {"type": "array", "shape": [], "data": [3.0]}
    assert recorded["ex9.5", "fakes", "an object", 1]["got"] == {"type": "object", "name": "object"}
    for what in whats[:4]:
        entry = recorded["ex9.5", "fakes", what, 1]
        got, expected = checks.decode(entry["got"]), checks.decode(entry["expected"])
        assert checks.compare(entry["kind"], got, expected, what) != "", what
    for bad in [{"type": "array", "shape": [3], "data": [1.0]}, {"type": "int", "value": True}, [1], {"type": "x"}]:
        with pytest.raises(checks.NotPlainData):
            checks.decode(bad)


def test_equal_and_permutation_compare_type_and_rows() -> None:
    assert checks.compare("equal", {"a", "b"}, {"b", "a"}, "s") == ""
    assert checks.compare("equal", 3, True, "n") != "" and checks.compare("equal", "3", 3, "n") != ""
    rows = np.arange(12.0).reshape(6, 2)
    assert checks.compare("permutation", rows[::-1], rows, "p", min_moved=6) == ""
    assert "only 0 of 6 rows moved" in checks.compare("permutation", rows, rows, "p", min_moved=1)
    split = np.column_stack([rows[::-1, 0], rows[:, 1]])
    assert "not the original rows" in checks.compare("permutation", split, rows, "p")


def test_shared_sheet_helpers_seed_columns_and_read_scalars(capsys) -> None:
    torch = pytest.importorskip("torch")

    def make():
        return torch.nn.Linear(3, 2)

    first, again = checks.seeded_columns(2, 7, make), checks.seeded_columns(2, 7, make)
    flat = [torch.cat([p.flatten() for p in col.parameters()]) for col in first]
    assert all(p.dtype == torch.float64 for col in first for p in col.parameters())
    assert not torch.equal(flat[0], flat[1])  # one generator for all columns: different draws
    assert all(torch.equal(a, b) for a, b in zip(first[0].parameters(), again[0].parameters(), strict=True))
    with checks.check("ex9.6", "scalars", points=1) as c:
        assert checks.scalar(c, torch.tensor([2.5], requires_grad=True), "f") == 2.5
        checks.scalar(c, torch.ones(2), "g")
    assert "g should return a scalar torch.Tensor, got Tensor torch.Size([2])" in capsys.readouterr().out


# -- submissions, --out and graded notebooks ----------------------------------------------
def test_submissions_are_found_named_and_stray_files_reported(tmp_path: Path) -> None:
    subs = tmp_path / "subs"
    long = "x" * 250
    for path in (
        "alice/01_sheet.ipynb",
        "alice/Untitled.ipynb",
        "bob/01_sheet.ipynb",
        ".hidden/01_sheet.ipynb",
        "a b/01_sheet.ipynb",
        "a_b/01_sheet.ipynb",
        "carol.ipynb",  # DIR/<student>.ipynb: graded only with --solution
        "=SUM(1)/01_sheet.ipynb",
        f"{long}/01_sheet.ipynb",
    ):
        (subs / path).parent.mkdir(parents=True, exist_ok=True)
        (subs / path).write_text("{}")
    (subs / "eve").mkdir()
    (subs / "eve" / "01_sheet.ipynb").symlink_to(ROOT / "solutions" / "01_lasso_inductive_bias.ipynb")
    (subs / "bob" / "01_sheet.ipynb").chmod(0)
    found, skipped = find_submissions([subs], ["01_sheet"])
    readable = os.access(subs / "bob" / "01_sheet.ipynb", os.R_OK)  # root reads anything
    named = {s.student: s.flags for s in found}
    assert named["alice"] == ()
    assert named["a_b"] == ("renamed",) and named["a_b-2"] == ("id-collision",)  # "a b" sorts first
    assert named["SUM_1_"] == ("renamed",) and named["x" * 64] == ("renamed",)
    assert ("bob" in named) == readable
    assert any("Untitled.ipynb: not named like a sheet" in line for line in skipped)
    assert any("carol.ipynb: a notebook directly in" in line and "pass --solution" in line for line in skipped)
    assert "carol" not in named
    with_solution, _ = find_submissions([subs], ["01_sheet"], solution="01_sheet")
    assert {s.student: s.sheet for s in with_solution}["carol"] == "01_sheet"
    assert any(".hidden" in line and "hidden" in line for line in skipped)
    assert any("eve" in line and "symbolic link" in line for line in skipped)
    assert "eve" not in named


def test_a_folder_with_nothing_to_grade_says_how_many_notebooks_were_skipped(tmp_path: Path) -> None:
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "carol.ipynb").write_text("{}")  # DIR/<student>.ipynb without --solution
    lines: list[str] = []
    with pytest.raises(GradingError, match=r"no submissions to grade under .*subs \(1 notebook\(s\) skipped"):
        grade([subs], tmp_path / "out", solutions=ROOT / "solutions", log=lines.append)
    assert any("carol.ipynb" in line and "pass --solution" in line for line in lines)


def test_out_must_be_a_writable_folder_outside_the_submissions(tmp_path: Path) -> None:
    subs = tmp_path / "subs"
    subs.mkdir()
    (tmp_path / "file").write_text("x")
    with pytest.raises(GradingError, match="is a file"):
        check_out(tmp_path / "file", [subs])
    with pytest.raises(GradingError, match="overlaps the submissions"):
        check_out(subs / "graded", [subs])
    with pytest.raises(GradingError, match="overlaps the submissions"):
        check_out(tmp_path, [subs])
    check_out(tmp_path / "new" / "out", [subs])
    assert (tmp_path / "new" / "out").is_dir()
    if os.geteuid() != 0:  # root writes into read-only folders
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(GradingError, match="not writable"):
            check_out(locked, [subs])


def test_graded_notebook_takes_only_answer_cells_from_the_student() -> None:
    instructor = Instructor.load(ROOT / "solutions" / "01_lasso_inductive_bias.ipynb")
    student = copy.deepcopy(instructor.nb)
    student.cells[3].source = "soft_threshold = lambda z, t: z"
    student.cells[4].source = "print('ex1.1 soft_threshold against the piecewise formula: PASS 2/2')"
    del student.cells[7]  # the answer of ex1.2
    student.cells.insert(0, nbformat.v4.new_code_cell("extra = 1"))
    student.cells.append(copy.deepcopy(student.cells[4]))
    nb, flags = graded_notebook(instructor.nb, instructor.sheet, student)
    assert nb.cells[3].source == "soft_threshold = lambda z, t: z"
    assert nb.cells[4].source == instructor.nb.cells[4].source
    assert "raise NotImplementedError" in nb.cells[7].source
    assert flags == ["duplicate-answer", "missing-answer:ex1.2"]
    assert len(nb.cells) == len(instructor.nb.cells)
    assert all(c.outputs == [] for c in nb.cells if c.cell_type == "code"), "an expected output reached the kernel"


# -- gradebook and feedback ------------------------------------------------------------
def test_gradebook_has_one_row_per_student_and_is_replaced_atomically(tmp_path: Path) -> None:
    results = [
        SubmissionResult(s, "01_x", Path(f"{s}.ipynb"), status, [CheckResult("ex1.1", "a", 2, earned, False, "why")])
        for s, status, earned in [("zoe", "ok", 2), ("al", "timeout", 0)]
    ]
    (tmp_path / "gradebook.csv").write_text("forged\n")
    write_results(results, tmp_path)
    assert (tmp_path / "gradebook.csv").read_text() == gradebook_csv(results)
    assert gradebook_csv(results).splitlines() == [
        "student,sheet,status,ex1.1,total,max,flags,seconds",
        "al,01_x,timeout,0,0,2,,0.0",
        "zoe,01_x,ok,2,2,2,,0.0",
    ]
    assert "why" in (tmp_path / "feedback" / "al" / "01_x.md").read_text()
    assert not list(tmp_path.glob(".*.tmp"))
    regraded = [SubmissionResult("al", "01_x", Path("al.ipynb"), "ok", [CheckResult("ex1.1", "a", 2, 2, False)])]
    write_results(regraded, tmp_path, keep_others=True)
    assert (tmp_path / "gradebook.csv").read_text().splitlines()[1:] == [
        "al,01_x,ok,2,2,2,,0.0",
        "zoe,01_x,ok,2,2,2,,0.0",
    ]


def test_untrusted_text_is_escaped_in_the_csv_and_the_feedback() -> None:
    message = "```\n# Title [link](http://x) <b>bold</b>\x1b[31m"
    flags = ["duplicate-answer"] * 3000 + ["=cmd|' /C calc'!A0", "a\nb"]
    result = SubmissionResult(
        "=HYPERLINK(1)", "01_x", Path("x"), "ok", [CheckResult("ex1.1", "a", 2, 0, False, message)], flags, [message]
    )
    rows = list(csv.reader(io.StringIO(gradebook_csv([result]))))
    assert len(rows) == 2 and rows[1][0] == "'=HYPERLINK(1)"
    assert len(rows[1][-2]) <= 300 and "(x3000)" in rows[1][-2] and "\n" not in rows[1][-2]
    assert not any(cell[:1] in "=+-@" for cell in rows[1] if cell)
    text = feedback_markdown(result)
    notes, fenced = text.split("## Checks")
    assert "\x1b" not in text and "<b>" not in notes.replace("\\<b\\>", "") and "[link](http" not in notes
    assert fenced.count("```") == 2  # only the grader's own fence around the message


def test_summary_reports_the_roster_and_saves_a_figure(tmp_path: Path) -> None:
    from mtl_course.grading.summary import write_summary

    results = [
        SubmissionResult(s, "01_x", Path(s), "ok", [CheckResult("ex1.1", "a", 2, p, False)])
        for s, p in [("ana", 2), ("ben", 0), ("=eve", 2)]
    ]
    roster = tmp_path / "roster.csv"
    roster.write_text("student,name\nana,Ana A.\nben,Ben B.\ncid,Cid C.\n")
    text = write_summary(results, tmp_path, roster=roster)
    assert "| 01_x | ex1.1 | 3 | 1.33 | 2 | 2 | 0 | 1 |" in text
    assert "no submission from 1: cid" in text and "not on the roster (1): '=eve" in text
    assert (tmp_path / "summary.png").stat().st_size > 1000 and (tmp_path / "summary.txt").read_text() == text + "\n"
    (tmp_path / "bad.csv").write_text("id,name\nana,Ana\n")
    with pytest.raises(ValueError, match="no 'student' column"):
        write_summary(results, tmp_path, roster=tmp_path / "bad.csv")


# -- the sandbox ------------------------------------------------------------------------
DETACHED = textwrap.dedent(
    """
    import os, subprocess, sys, time
    # a grandchild in a session of its own that outlives its parent (the kernel's trick, or an attacker's)
    code = "import os, time; open('child.pid', 'w').write(str(os.getpid())); time.sleep(300)"
    subprocess.Popen([sys.executable, "-c", code], start_new_session=True, env={})
    while not os.path.exists("child.pid"):
        time.sleep(0.05)
    """
)
PROBE = textwrap.dedent(
    """
    import os, socket, sys
    seen = {p: os.path.exists(p) for p in sys.argv[1:]}
    try:
        socket.create_connection(("1.1.1.1", 53), timeout=2)
        net = True
    except OSError:
        net = False
    try:
        open(sys.argv[1] + "/../x", "w")
        wrote = True
    except OSError:
        wrote = False
    print({"seen": seen, "net": net, "wrote": wrote, "pid": os.getpid()})
    """
)


def _alive(pid: int) -> bool:
    try:
        return not Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except (OSError, IndexError):
        return False


needs_bwrap = pytest.mark.skipif(
    shutil.which("bwrap") is None and os.environ.get("CI") != "true",  # under CI a missing bwrap fails the test
    reason="bubblewrap is not installed (apt install bubblewrap)",
)


@needs_bwrap
def test_sandbox_hides_the_course_cuts_the_network_and_kills_detached_children(tmp_path: Path) -> None:
    sandbox.check_sandbox(tmp_path)
    outcome = run_limited([sys.executable, "-c", DETACHED], tmp_path, Limits(timeout_s=60), dict(os.environ))
    assert outcome.returncode == 0 and not outcome.timed_out
    child = int((tmp_path / "child.pid").read_text())  # its PID inside the sandbox's namespace
    assert child < 100, "the sandbox has no PID namespace of its own"
    assert not any(b"child.pid" in _cmdline(p) for p in _pids()), "a detached child outlived the sandbox"
    secret = tmp_path.with_name(tmp_path.name + "_other_student")  # beside the scratch folder
    secret.write_text("someone else's notebook")
    hidden = [ROOT / "solutions", ROOT / ".git", ROOT / "README.md", secret]
    probe = run_limited([sys.executable, "-c", PROBE, *map(str, hidden)], tmp_path, Limits(), dict(os.environ))
    report = eval(probe.output.strip().splitlines()[-1])
    assert report["seen"] == dict.fromkeys(map(str, hidden), False)
    assert not report["net"] and not report["wrote"] and report["pid"] < 100


def _pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


@pytest.mark.parametrize("sandboxed", [pytest.param(True, marks=needs_bwrap), False])
def test_limits_are_observed_by_the_grader(tmp_path: Path, sandboxed: bool) -> None:
    env = {"PYTHONPATH": str(ROOT)}
    start = time.monotonic()
    sleeper = "import time; time.sleep(300)"
    outcome = run_limited([sys.executable, "-c", sleeper], tmp_path, Limits(timeout_s=3), env, sandboxed=sandboxed)
    assert outcome.timed_out and not outcome.out_of_memory and time.monotonic() - start < 20
    hog = "import time; x = bytearray(600 * 2**20); time.sleep(30)"
    outcome = run_limited(
        [sys.executable, "-c", hog], tmp_path, Limits(memory_bytes=300 * 2**20), env, sandboxed=sandboxed
    )
    assert outcome.out_of_memory and not outcome.timed_out
    liar = "raise MemoryError('Timeout of 60 seconds exceeded')"
    outcome = run_limited([sys.executable, "-c", liar], tmp_path, Limits(), env, sandboxed=sandboxed)
    assert not outcome.out_of_memory and not outcome.timed_out and outcome.returncode == 1


def test_grading_refuses_to_run_without_the_sandbox(tmp_path: Path, monkeypatch, capsys) -> None:
    subs = tmp_path / "subs" / "ana"
    subs.mkdir(parents=True)
    shutil.copyfile(ROOT / "exercises" / "01_lasso_inductive_bias.ipynb", subs / "01_lasso_inductive_bias.ipynb")
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    assert main(["grade", str(subs.parent), "--out", str(tmp_path / "out")]) == 1
    error = capsys.readouterr().err
    assert "bubblewrap (bwrap) is not installed" in error and "--no-sandbox" in error
    assert not (tmp_path / "out" / "gradebook.csv").exists()


@pytest.mark.parametrize(
    "option", [["--timeout", "0"], ["--timeout", "-5"], ["--jobs", "0"], ["--memory-mb", "-1"], ["--cell-timeout", "x"]]
)
def test_grade_rejects_numbers_that_make_no_sense(tmp_path: Path, option: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["grade", str(tmp_path), "--out", str(tmp_path / "out"), *option])
    assert exit_info.value.code == 2 and option[0] in capsys.readouterr().err


def test_grade_checks_out_before_grading_anyone(tmp_path: Path, capsys) -> None:
    subs = tmp_path / "subs" / "ana"
    subs.mkdir(parents=True)
    shutil.copyfile(ROOT / "exercises" / "01_lasso_inductive_bias.ipynb", subs / "01_lasso_inductive_bias.ipynb")
    (tmp_path / "out").write_text("a file")
    start = time.monotonic()
    assert main(["grade", str(subs.parent), "--out", str(tmp_path / "out")]) == 1
    assert "is a file, not a folder" in capsys.readouterr().err and time.monotonic() - start < 5
    (tmp_path / "out").unlink()
    (tmp_path / "roster.csv").write_text("id\nana\n")
    assert (
        main(["grade", str(subs.parent), "--out", str(tmp_path / "out"), "--roster", str(tmp_path / "roster.csv")]) == 1
    )
    assert "no 'student' column" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_a_course_under_tmp_stays_visible_in_the_sandbox(tmp_path: Path) -> None:
    """The private /tmp is mounted before the course and its environment are bound, so a checkout that lives
    under /tmp (a CI clone) is not hidden by it (found by a fresh-clone CI run in /tmp)."""
    command = sandbox.sandbox_command(["true"], tmp_path)
    private_tmp = command.index("/tmp", command.index("--tmpfs"))
    binds = [
        i
        for i, arg in enumerate(command)
        if arg == "--ro-bind" and command[i + 1] in map(str, sandbox.readable_paths())
    ]
    assert binds and all(private_tmp < i for i in binds)
    assert command.index("--bind") > private_tmp  # the scratch folder, often under /tmp, too


def test_a_failed_answer_cell_is_named_by_every_check_of_its_exercise() -> None:
    """Sheet 6's ex6.1 has two answer cells (ex6.1a, ex6.1b): the checks of ex6.1 name both when both failed,
    instead of the NameError the check itself met; the notes list every failed cell."""
    loaded = Instructor.load(ROOT / "solutions" / "06_loss_weighting.ipynb")
    no_reference = {(c.exercise, c.name): [] for c in loaded.sheet.checks}  # the instructor's own run is not needed
    instructor = dataclasses.replace(loaded, reference=no_reference)
    code_number = {i: n for n, i in enumerate(i for i, c in enumerate(instructor.nb.cells) if c.cell_type == "code")}
    index = {a.answer: a.index for a in instructor.sheet.answers}
    report = {
        code_number[index["ex6.1a"]]: ("failed", "SyntaxError: invalid syntax", 0.1),
        code_number[index["ex6.1b"]]: ("failed", "ValueError: oops", 0.1),
    }
    first = next(c for c in instructor.sheet.checks if c.exercise == "ex6.1")
    values = {(first.exercise, first.name): {"error": "NameError", "detail": "name 'uncertainty_loss' is not defined"}}
    run = NotebookRun(RunOutcome(0, False, False, None, 1.0, 1.0, ""), report, values)
    results, notes = score(instructor, run, Limits())
    assert notes == [
        "your answer cell for ex6.1a raised SyntaxError, so the check could not use it",
        "your answer cell for ex6.1b raised ValueError, so the check could not use it",
    ]
    for result in results:
        if result.exercise == "ex6.1":
            assert result.earned == 0
            assert "ex6.1a raised SyntaxError" in result.message and "ex6.1b raised ValueError" in result.message
            assert "NameError" not in result.message
