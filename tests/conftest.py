import contextlib
import csv
import io
import os
import subprocess
import sys


def _compile_directory_per_worker():
    """Each xdist worker (and the processes it starts) compiles into its own directory
    under the configured ``base_compiledir``: PyTensor holds one lock per compile directory while it
    compiles a C module, so two workers sharing one take turns, and from an empty cache compiling is
    most of the suite's time (two --quick analyses run side by side: 124 s sharing a directory, 85 s
    apart); :func:`_take_modules_of_other_workers` then spares a worker the modules another worker has
    already compiled. Set before PyTensor is imported; a ``compiledir_format`` already in
    ``PYTENSOR_FLAGS`` is left alone. Returns whether it was set here."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    flags = os.environ.get("PYTENSOR_FLAGS", "")
    if worker and "compiledir_format" not in flags:
        own = ("compiledir_format=compiledir_%(short_platform)s-%(processor)s-%(python_version)s-"
               f"%(python_bitwidth)s-{worker}")
        os.environ["PYTENSOR_FLAGS"] = f"{flags},{own}" if flags else own
        return True
    return False


_PER_WORKER = _compile_directory_per_worker()

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import settings as hypothesis_settings  # noqa: E402

# Property tests draw the same examples on every run, so a run (CI's included) cannot fail on a rare
# draw that the next run does not reproduce; HYPOTHESIS_PROFILE=explore draws new ones.
hypothesis_settings.register_profile("derandomized", derandomize=True)
hypothesis_settings.register_profile("explore", derandomize=False)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "derandomized"))


def _take_modules_of_other_workers():
    """Before this worker compiles a C module, copy in the modules the other workers have finished
    (most modules, those of the coin, of the logistic regression, of sums and products, are needed by
    both workers: from an empty cache, 94 of one worker's 116 were compiled by the other too).

    PyTensor looks a module up in its cache and, on a miss, takes its compile directory's lock and
    re-reads the directory (``ModuleCache.refresh`` inside ``module_from_key``) before compiling; a
    module directory copied in by then is loaded instead of compiled. A finished module directory
    (one with a ``key.pkl``: the library exists before the key is written) is copied whole, under the
    same ``tmp...`` name that PyTensor recognises as the same entry moved (``cmodule.is_same_entry``),
    to a staging folder beside the compile directories; once its copied key reads back whole it is
    renamed into place, so no process ever sees half a copy. Nothing is written to another worker's
    directory, and no lock is shared. A module that fails to copy three times (being rewritten, or
    removed) is compiled here as before."""
    import collections
    import glob
    import pickle
    import shutil
    import tempfile

    import pytensor
    from pytensor.link.c import cmodule

    own = str(pytensor.config.compiledir)
    worker = os.environ["PYTEST_XDIST_WORKER"]
    if not own.endswith(f"-{worker}"):   # a compile directory of the user's own: left alone
        return
    others = glob.escape(own[: -len(worker)]) + "gw*"
    staging = os.path.join(os.path.dirname(own), f"staging-{worker}")   # renames stay on one file system
    shutil.rmtree(staging, ignore_errors=True)   # what a killed run left
    taken, failures = set(), collections.Counter()
    looking_up = [False]

    def take():
        try:
            found = [(other, name) for other in glob.glob(others) if other != own
                     for name in os.listdir(other)]
        except OSError:
            return
        for other, name in found:
            source, target = os.path.join(other, name), os.path.join(own, name)
            if (not name.startswith("tmp") or name in taken or failures[name] >= 3
                    or os.path.exists(target)):
                continue
            try:
                files = os.listdir(source)
                if "key.pkl" not in files or "delete.me" in files:
                    continue
                os.makedirs(staging, exist_ok=True)
                with tempfile.TemporaryDirectory(dir=staging) as scratch:
                    copy = os.path.join(scratch, name)
                    # Fresh file times: PyTensor neither uses nor deletes a module by its age.
                    shutil.copytree(source, copy, copy_function=shutil.copy)
                    with open(os.path.join(copy, "key.pkl"), "rb") as handle:
                        pickle.load(handle)   # the copy is whole (its owner may rewrite the key)
                    os.rename(copy, target)
                taken.add(name)
            except Exception:
                failures[name] += 1

    module_from_key, refresh = cmodule.ModuleCache.module_from_key, cmodule.ModuleCache.refresh

    def module_from_key_with_others(self, *args, **kwargs):
        looking_up[0] = str(self.dirname) == own
        try:
            return module_from_key(self, *args, **kwargs)
        finally:
            looking_up[0] = False

    def refresh_with_others(self, *args, **kwargs):
        if looking_up[0]:   # only before a compile, not at start-up or exit
            take()
        return refresh(self, *args, **kwargs)

    cmodule.ModuleCache.module_from_key = module_from_key_with_others
    cmodule.ModuleCache.refresh = refresh_with_others


def pytest_configure(config):
    """In a process that runs tests, import ``models`` (BLAS configuration before PyTensor compiles
    anything) and share compiled modules with the other workers. pytest-xdist's controller runs no
    test: it imports neither PyMC nor PyTensor (5 s), so the workers start that much sooner. PyTensor's
    record of where each graph variable was created is off, as on the command line (no test reads
    it; about 5% of building and compiling a model)."""
    if os.environ.get("PYTEST_XDIST_WORKER") or not getattr(config.option, "numprocesses", None):
        import models

        models.configure(creation_backtraces=False)
        if _PER_WORKER:
            _take_modules_of_other_workers()

# The seed's example: 10 tosses, 7 heads, the 3rd toss (heads) weighted 10.
SEED_FLIPS = np.array([1, 0, 1, 1, 0, 1, 1, 0, 1, 1])
SEED_WEIGHTS = np.array([1, 1, 10, 1, 1, 1, 1, 1, 1, 1], dtype=float)


@pytest.hookimpl(trylast=True)   # after -m has deselected the slow tests
def pytest_collection_modifyitems(items):
    """Files marked ``analysis_run(seconds=...)`` (an analysis run end to end; its cold seconds on
    the reference machine) first, longest first, then the others by their number of tests: with
    ``--dist loadfile --no-loadscope-reorder`` the workers take files in this order as they come free,
    so they finish together instead of one waiting on a long file handed out last. Longest first
    also keeps the policy analysis and policy iteration, which compile many of the same C modules,
    from starting side by side: the later one copies the modules in (``_take_modules_of_other_workers``)."""
    by_file: dict[str, list] = {}
    for item in items:
        by_file.setdefault(item.nodeid.split("::")[0], []).append(item)

    def cost(tests):
        runs = [marker.kwargs.get("seconds", 0) for test in tests
                for marker in test.iter_markers("analysis_run")]
        return max(runs, default=-1), len(tests)

    items[:] = [item for tests in sorted(by_file.values(), key=cost, reverse=True) for item in tests]


@pytest.fixture(autouse=True)
def _python_mode(request):
    """Tests marked ``python_mode`` (module or test) that only evaluate or optimise small graphs run
    PyTensor's Python implementations (mode FAST_COMPILE): compiling a C module per new graph costs
    seconds, more than the evaluations save. ``default_mode`` on a test of such a module (NUTS with
    thousands of steps) keeps PyTensor's default back end, as do module-scoped fixtures (set up
    before this one), among them the analyses' --quick runs, and processes the tests start."""
    if request.node.get_closest_marker("python_mode") is None or request.node.get_closest_marker(
            "default_mode") is not None:
        yield
        return
    import pytensor

    with pytensor.config.change_flags(mode="FAST_COMPILE"):
        yield


@pytest.fixture
def flips():
    return SEED_FLIPS.copy()


@pytest.fixture
def key_weights():
    return SEED_WEIGHTS.copy()


@pytest.fixture
def symbolic_hessian():
    """``symbolic_hessian(model, jacobian=True)(z)``: the Hessian of ``model.logp`` at the raveled
    value variables z, as rows of PyTensor's gradients of its gradient (``model.compile_d2logp``
    computes it through a scan whose inner function compiles C code even in Python mode)."""
    import pytensor
    import pytensor.tensor as pt

    def of(model, jacobian=True):
        values, point = model.value_vars, model.initial_point()
        shapes = [np.shape(point[value.name]) for value in values]
        sizes = [int(np.prod(shape)) for shape in shapes]

        def raveled_gradient(of):
            return pt.concatenate([pt.flatten(g) for g in pytensor.grad(of, values)])

        gradient = raveled_gradient(model.logp(jacobian=jacobian))
        rows = [raveled_gradient(gradient[k]) for k in range(sum(sizes))]
        function = pytensor.function(values, pt.stack(rows))

        def at(z):
            parts = np.split(np.asarray(z, dtype=float), np.cumsum(sizes)[:-1])
            return function(*(part.reshape(shape) for part, shape in zip(parts, shapes)))

        return at

    return of


@pytest.fixture(scope="session")
def run_quick(tmp_path_factory):
    """``run_quick(name)``: ``python -m analyses NAME --quick --seed 3`` into a fresh folder; returns
    ``(folder, completed process, summary rows)`` after asserting exit 0. The command line's ``main``
    runs in this process (standard output and error captured): a new interpreter would add seconds
    of imports to every run, and tests/test_cli.py runs ``python -m analyses`` as a user does."""
    from analyses import cli

    def run(name: str):
        out = tmp_path_factory.mktemp(name)
        arguments = [name, "--quick", "--seed", "3", "--out", str(out)]
        stdout, stderr = io.StringIO(), io.StringIO()
        try:
            with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
                returncode = cli.main(arguments)
        finally:   # what the run printed before it failed, shown with the failure
            sys.stdout.write(stdout.getvalue())
            sys.stderr.write(stderr.getvalue())
        done = subprocess.CompletedProcess(["python", "-m", "analyses", *arguments], returncode,
                                           stdout.getvalue(), stderr.getvalue())
        assert done.returncode == 0, done.stderr
        with open(out / "results" / name / "summary.csv", newline="") as handle:
            return out, done, list(csv.DictReader(handle))

    return run
