"""The mutation gate: apply realistic defects one at a time and check that a test catches each.

    python -m tools.mutants                 # every mutant of tests/mutants.yaml, then mutmut (make mutants)
    python -m tools.mutants --only ID ...   # some of them (no mutmut)
    python -m tools.mutants --list          # the list, without running anything

Each mutant replaces one exact piece of text in one tracked file (it must occur exactly once,
so the list cannot rot silently while the code moves on) and names the tests that ought to
catch it. The tool copies the working tree's tracked files into a scratch folder, proves
those tests pass there unmutated, then applies each mutant alone, runs its tests with
``CI=true`` and restores the file. A mutant the tests do not fail on *survives*: a property
that can break without a test noticing.

Then mutmut, a mutation tool from PyPI, changes every operator, constant and string of the pure
generators and value types that pyproject.toml's ``[tool.mutmut]`` names, one at a time, against
the fast tests that cover them. The exit status is 1 when any mutant of either stage survives.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
MUTANTS_FILE = ROOT / "tests" / "mutants.yaml"
#: What a mutant may stand for: the defect classes the gate exists to catch.
CLASSES = ("security", "setting", "validation", "expectation", "data", "alerting", "rollout", "setup")
#: Untracked folders the tests use (virtual environments), linked into the scratch copy.
LINKED = (".venv", ".venv-checkov", "policy/venv")
#: A mutant whose tests run longer than this counts as surviving: something hangs.
TIMEOUT_SECONDS = 900


@dataclass(frozen=True)
class Mutant:
    id: str
    kind: str
    why: str
    file: str
    find: str
    replace: str
    tests: tuple[str, ...]

    def problems(self, root: Path = ROOT) -> list[str]:
        """Why the mutant cannot be applied as written (empty when it can)."""
        problems = []
        if self.kind not in CLASSES:
            problems.append(f"{self.id}: class {self.kind!r} is not one of {', '.join(CLASSES)}")
        path = root / self.file
        count = path.read_text().count(self.find) if path.is_file() else -1
        if count != 1:
            where = "the file does not exist" if count < 0 else f"the text occurs {count} times"
            problems.append(f"{self.id}: `find` must occur exactly once in {self.file}; {where}")
        if self.find == self.replace:
            problems.append(f"{self.id}: `replace` is the same text as `find`")
        missing = [test for test in self.tests if not (root / test.split("::")[0]).is_file()]
        if not self.tests or missing:
            problems.append(f"{self.id}: tests must name existing test files ({missing or 'none given'})")
        return problems


def load_mutants(path: Path = MUTANTS_FILE) -> list[Mutant]:
    entries = yaml.safe_load(path.read_text()) or []
    mutants = [
        Mutant(id=entry["id"], kind=entry["class"], why=entry["why"], file=entry["file"],
               find=entry["find"], replace=entry.get("replace", ""), tests=tuple(entry["tests"]))
        for entry in entries
    ]
    ids = [mutant.id for mutant in mutants]
    duplicates = sorted({name for name in ids if ids.count(name) > 1})
    if duplicates:
        raise ValueError(f"{path.name}: duplicate ids {duplicates}")
    return mutants


@dataclass(frozen=True)
class Outcome:
    mutant: Mutant
    killed: bool
    seconds: float
    detail: str


def scratch_copy(destination: Path, root: Path = ROOT) -> Path:
    """The working tree (tracked and new files, as they are on disk, not ignored ones) under ``destination``."""
    listing = ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"]
    files = subprocess.run(listing, cwd=root, check=True, capture_output=True).stdout
    for name in files.decode().split("\0"):
        source = root / name
        if name and source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    for name in LINKED:
        if (root / name).exists():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            (destination / name).symlink_to(root / name)
    return destination


#: Process groups of the test runs under way, stopped whole if the gate itself is stopped.
_RUNNING: set[int] = set()


def _stop_running() -> None:
    for group in list(_RUNNING):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)


def run_tests(copy: Path, tests: Iterable[str]) -> tuple[bool, str]:
    """Run ``tests`` in ``copy``: (passed, the first failure or the reason)."""
    pytest_failed = 1
    command = [str(ROOT / ".venv" / "bin" / "python"), "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
               "--no-header", "-o", "addopts=", *tests]
    environment = {**os.environ, "CI": "true", "PYTHONDONTWRITEBYTECODE": "1"}
    # A session of its own: the tests start worker processes, which must stop with them.
    process = subprocess.Popen(command, cwd=copy, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    _RUNNING.add(process.pid)
    try:
        stdout, stderr = process.communicate(timeout=TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return True, f"timed out after {TIMEOUT_SECONDS} s"
    except BaseException:  # the gate is stopped while this run is under way
        os.killpg(process.pid, signal.SIGKILL)
        raise
    finally:
        _RUNNING.discard(process.pid)
    if process.returncode == 0:
        return True, "every test passed"
    if process.returncode != pytest_failed:
        # Not "a test failed" (1) but a usage error, nothing collected, an internal error: the mutant
        # proves nothing either way, so it is not counted as caught.
        return True, f"the tests could not run (pytest exit status {process.returncode})"
    failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", stdout, flags=re.MULTILINE)
    last_lines = (stdout.strip() or stderr.strip() or "no output").splitlines()
    return False, failed[0] if failed else last_lines[-1]


def try_mutant(copy: Path, mutant: Mutant) -> Outcome:
    path = copy / mutant.file
    original = path.read_text()
    path.write_text(original.replace(mutant.find, mutant.replace, 1))
    started = time.monotonic()
    try:
        passed, detail = run_tests(copy, mutant.tests)
    finally:
        path.write_text(original)
    return Outcome(mutant, killed=not passed, seconds=time.monotonic() - started, detail=detail)


def run_all(mutants: Sequence[Mutant], jobs: int) -> list[Outcome]:
    """Each mutant on its own scratch copy (``jobs`` copies in parallel), after a clean baseline."""
    with tempfile.TemporaryDirectory(prefix="codai-mutants-") as scratch:
        copies = [scratch_copy(Path(scratch) / f"copy-{n}") for n in range(jobs)]
        baseline = sorted({test for mutant in mutants for test in mutant.tests})
        print(f"baseline: the {len(baseline)} tests and test files the mutants name, unmutated ...", flush=True)
        passed, detail = run_tests(copies[0], baseline)
        if not passed:
            raise SystemExit(f"the tests fail before any mutation ({detail}); fix them first")
        waiting: queue.SimpleQueue[Mutant] = queue.SimpleQueue()
        for mutant in mutants:
            waiting.put(mutant)
        stopping = threading.Event()

        def work(copy: Path) -> list[Outcome]:
            outcomes = []
            while not stopping.is_set():
                try:
                    mutant = waiting.get_nowait()
                except queue.Empty:
                    break
                outcome = try_mutant(copy, mutant)
                verdict = "killed  " if outcome.killed else "SURVIVED"
                print(f"{verdict} {mutant.id:<48} {outcome.seconds:6.1f} s  {outcome.detail}", flush=True)
                outcomes.append(outcome)
            return outcomes

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            try:
                results = [outcome for batch in pool.map(work, copies) for outcome in batch]
            except BaseException:
                stopping.set()  # the workers take no further mutant, and the running tests are stopped
                _stop_running()
                raise
    order = {mutant.id: n for n, mutant in enumerate(mutants)}
    return sorted(results, key=lambda outcome: order[outcome.mutant.id])


@dataclass(frozen=True)
class MutmutScore:
    """What mutmut made of the modules pyproject.toml's [tool.mutmut] names."""

    killed: int
    total: int
    #: Mutants no test failed on, or that no selected test covers, by mutmut's name.
    missed: tuple[str, ...]


def run_mutmut(copy: Path, jobs: int) -> MutmutScore:
    """mutmut 3 in a scratch copy: every operator and constant of the listed modules, against their tests."""
    python = str(ROOT / ".venv" / "bin" / "python")
    environment = {**os.environ, "CI": "true", "PYTHONDONTWRITEBYTECODE": "1"}

    def mutmut(*arguments: str) -> str:
        process = subprocess.Popen([python, "-m", "mutmut", *arguments], cwd=copy, env=environment,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        _RUNNING.add(process.pid)
        try:
            output, _ = process.communicate()
        finally:
            _RUNNING.discard(process.pid)
        if process.returncode != 0:
            raise SystemExit(f"mutmut {arguments[0]} failed:\n{output[-2000:]}")
        return output

    mutmut("run", "--max-children", str(jobs))
    mutmut("export-cicd-stats")
    stats = json.loads((copy / "mutants" / "mutmut-cicd-stats.json").read_text())
    missed = tuple(line.strip() for line in mutmut("results").splitlines() if ": " in line)
    return MutmutScore(killed=stats["killed"], total=stats["total"], missed=missed)


def summary(outcomes: Sequence[Outcome]) -> str:
    killed = sum(outcome.killed for outcome in outcomes)
    lines = [f"{killed} of {len(outcomes)} mutants killed ({100 * killed // max(len(outcomes), 1)} %)"]
    for kind in CLASSES:
        of_kind = [outcome for outcome in outcomes if outcome.mutant.kind == kind]
        if of_kind:
            lines.append(f"  {kind:<12} {sum(o.killed for o in of_kind)}/{len(of_kind)}")
    survivors = [outcome.mutant for outcome in outcomes if not outcome.killed]
    lines += [f"  survived: {mutant.id} ({mutant.file}): {mutant.why}" for mutant in survivors]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", metavar="ID", help="run these mutants only")
    parser.add_argument("--list", action="store_true", help="print the list and exit")
    parser.add_argument("--no-mutmut", action="store_true", help="the curated list only (implied by --only)")
    parser.add_argument("--jobs", type=int, default=max(1, min(2, os.cpu_count() or 1)),
                        help="scratch copies run in parallel (default: 2, or 1 on one core)")
    args = parser.parse_args(argv)
    mutants = load_mutants()
    if args.only:
        unknown = sorted(set(args.only) - {mutant.id for mutant in mutants})
        if unknown:
            parser.error(f"no mutant named {', '.join(unknown)}")
        mutants = [mutant for mutant in mutants if mutant.id in args.only]
    problems = [problem for mutant in mutants for problem in mutant.problems()]
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 2
    if args.list:
        for mutant in mutants:
            print(f"{mutant.id:<48} {mutant.kind:<12} {mutant.file}: {mutant.why}")
        return 0
    started = time.monotonic()
    # Stopped by SIGTERM as by Ctrl-C: no test run may outlive the gate (run_all stops them).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    outcomes = run_all(mutants, args.jobs)
    print(summary(outcomes))
    print(f"in {time.monotonic() - started:.0f} s")
    caught = all(outcome.killed for outcome in outcomes)
    if not (args.only or args.no_mutmut):
        started = time.monotonic()
        print("mutmut: every operator and constant of the pure generators (pyproject.toml [tool.mutmut]) ...",
              flush=True)
        with tempfile.TemporaryDirectory(prefix="codai-mutmut-") as scratch:
            score = run_mutmut(scratch_copy(Path(scratch)), args.jobs)
        print(f"mutmut: {score.killed} of {score.total} mutants killed, in {time.monotonic() - started:.0f} s")
        print("\n".join(f"  missed: {line}" for line in score.missed))
        caught = caught and not score.missed
    return 0 if caught else 1


if __name__ == "__main__":
    sys.exit(main())
