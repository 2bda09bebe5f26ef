"""Scale benchmark: render time and peak memory, real stacks and synthetic catalogs.

    python -m tools.bench            # every case, a table, and a check that cost grows linearly
    python -m tools.bench --factors 1 10    # a shorter run

Each case runs in a fresh Python process, so its peak memory (max RSS) is its own. Synthetic
catalogs repeat the 29 real services ``factor`` times (290, 2,900 services) with their
relationships, on the production stack's settings with a quota large enough to hold them.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence

import pulumi

from components.platform import CodaiPlatform, PlatformArgs
from services.catalog import SERVICES, Catalog
from services.model import EVERY_SERVICE, ServiceSpec
from settings.loader import PROJECT, load_settings
from settings.pulumi_config import read_project_config
from tools.offline import ROOT, discover_stacks, run_stack, stack_config

#: Generous quota for synthetic catalogs: the benchmark measures the program, not capacity planning.
UNBOUNDED_QUOTA = {"requestsCpu": "1000000", "requestsMemory": "1000Ti", "limitsMemory": "1000Ti",
                   "requestsStorage": "1000Ti", "pods": 10_000_000, "persistentVolumeClaims": 100_000}
#: Time per resource at the largest factor may be at most this multiple of the real stack's.
LINEARITY_BOUND = 1.5


def synthetic_program(factor: int) -> Callable[[], None]:
    """The platform over the catalog repeated ``factor`` times, as the project's __main__.py builds it."""

    def program() -> None:
        catalog = synthetic_catalog(factor)
        settings = load_settings(pulumi.get_stack(), read_project_config(), catalog)
        CodaiPlatform("codai", PlatformArgs(plan=settings, catalog=catalog))

    return program


def synthetic_catalog(factor: int) -> Catalog:
    """The real catalog repeated ``factor`` times; copy ``i`` of ``svc`` is ``svc-i`` (copy 0 is ``svc``)."""

    def renamed(name: str, copy: int) -> str:
        return name if copy == 0 else f"{name}-{copy}"

    def copy_of(spec: ServiceSpec, copy: int) -> ServiceSpec:
        # Each copy is a whole ecosystem of its own: "every service" means every service of
        # that copy. (Otherwise 100 copies of logai would each admit all 2,900 services, and
        # the policies, not the program, would grow quadratically.)
        names = [s.name for s in SERVICES if s.name != spec.name] if spec.callers == EVERY_SERVICE else spec.callers
        callers = tuple(renamed(c, copy) for c in names)
        return spec.model_copy(update={"name": renamed(spec.name, copy), "callers": callers,
                                       "image_repository": spec.repository})

    return Catalog(copy_of(spec, copy) for copy in range(factor) for spec in SERVICES)


def measure_case(case: str) -> dict[str, float]:
    """Run one case in this process; returns its figures."""
    started = time.perf_counter()
    if case.startswith("stack:"):
        run = run_stack(case.removeprefix("stack:"))
        services = 29
    elif case.startswith("synthetic:"):
        factor = int(case.removeprefix("synthetic:"))
        config, secrets = stack_config("production")
        environment = json.loads(config[f"{PROJECT}:environment"])
        environment["quota"] = UNBOUNDED_QUOTA
        config[f"{PROJECT}:environment"] = json.dumps(environment)
        run = run_stack("production", config=config, secret_keys=secrets, program=synthetic_program(factor))
        services = 29 * factor
    else:
        raise SystemExit(f"unknown case {case!r}")
    seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"seconds": seconds, "resources": len(run.resources), "services": services, "peak_mib": peak_kib / 1024}


def _in_subprocess(args: list[str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, check=True)
    return time.perf_counter() - started, done.stdout


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: measure one case, print JSON
    parser.add_argument("--factors", type=int, nargs="+", default=[10, 100], help="synthetic catalog sizes (x29)")
    options = parser.parse_args(argv)
    if options.case:
        print(json.dumps(measure_case(options.case)))
        return 0

    rows = []
    for case in [*(f"stack:{s}" for s in discover_stacks()), *(f"synthetic:{f}" for f in options.factors)]:
        _, out = _in_subprocess(["-m", "tools.bench", "--case", case])
        figures = json.loads(out)
        rows.append((case, figures))
        print(f"{case:<22} {figures['services']:>6.0f} services {figures['resources']:>7.0f} resources "
              f"{figures['seconds']:>8.2f}s  {1000 * figures['seconds'] / figures['resources']:>6.2f} ms/resource "
              f"peak {figures['peak_mib']:>7.0f} MiB", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        wall, _ = _in_subprocess(["-m", "tools.render", "--out", folder])
    print(f"{'make render (all stacks)':<22} {wall:.2f}s wall, including interpreter start and imports")

    base = min(f["seconds"] / f["resources"] for case, f in rows if case.startswith("stack:"))
    worst_case, worst = max(((c, f["seconds"] / f["resources"]) for c, f in rows), key=lambda item: item[1])
    ratio = worst / base
    print(f"cost per resource: worst {worst_case} is {ratio:.2f}x the real stacks' (bound {LINEARITY_BOUND}x)")
    return 0 if ratio <= LINEARITY_BOUND else 1


if __name__ == "__main__":
    sys.exit(main())
