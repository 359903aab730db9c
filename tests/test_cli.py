"""Tier 4: the command line, as a user runs it (`python -m analyses ...`)."""

import csv
import shutil
import subprocess
import sys
import time

import arviz as az
import matplotlib.pyplot as plt
import numpy as np
import pytest

import models
from analyses import cli
from models.errors import InputError

pytestmark = pytest.mark.analysis_run(seconds=30)   # cold, for the order (tests/conftest.py)

COIN_FIGURES = {"log_likelihood.png", "posteriors.png", "weight_sweep.png", "trace_rank.png"}
COIN_POSTERIORS = {"unweighted.nc", "weights_as_given.nc", "weights_sum_n.nc", "weights_sum_ess.nc"}


def run(*arguments, timeout=600):
    return subprocess.run([sys.executable, "-m", "analyses", *arguments], capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def coin_quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("coin")
    done = run("coin", "--quick", "--strict", "--seed", "7", "--out", str(out))
    return out, done


def read_summary(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_coin_quick_writes_figures_posteriors_and_summary(coin_quick):
    out, done = coin_quick
    assert done.returncode in (0, 1), done.stderr
    assert {p.name for p in (out / "figures" / "coin").iterdir()} == COIN_FIGURES
    results = {p.name for p in (out / "results" / "coin").iterdir()}
    assert results == COIN_POSTERIORS | {"summary.csv", "weight_sweep.csv"}
    rows = read_summary(out / "results" / "coin" / "summary.csv")
    assert list(rows[0]) == ["model", "estimator", "quantity", "value", "lower", "upper"]
    value = {(r["model"], r["estimator"], r["quantity"]): r for r in rows}
    assert float(value["unweighted", "mle", "p"]["value"]) == pytest.approx(0.7, abs=1e-6)
    for label in ("weights_as_given", "weights_sum_n", "weights_sum_ess"):
        assert float(value[label, "wmle", "p"]["value"]) == pytest.approx(16 / 19, abs=1e-6)
        posterior = value[label, "posterior", "p"]
        assert float(posterior["lower"]) < float(posterior["value"]) < float(posterior["upper"])
    assert value["unweighted", "mle", "p"]["lower"] == ""
    # The quick posteriors against their exact Beta means: within 5 MCSE (ArviZ's, from the saved draws;
    # a correct sampler exceeds that with probability below 1e-6 per posterior).
    for label in ("unweighted", "weights_as_given", "weights_sum_n", "weights_sum_ess"):
        idata = az.from_netcdf(out / "results" / "coin" / f"{label}.nc")
        mcse = float(az.mcse(idata, var_names=["p"])["p"])
        exact = float(value[label, "exact_posterior", "p"]["value"])
        assert abs(float(idata.posterior["p"].mean()) - exact) < 5 * mcse, label
    assert "weights_as_given  wmle" in done.stdout  # the table is printed
    sweep = read_summary(out / "results" / "coin" / "weight_sweep.csv")
    assert {r["diagnostics_ok"] for r in sweep if r["estimator"] == "posterior"} <= {"0", "1"}
    assert {r["diagnostics_ok"] for r in sweep if r["estimator"] != "posterior"} == {""}


def test_strict_exit_code_follows_the_diagnostics(coin_quick):
    out, done = coin_quick
    rows = read_summary(out / "results" / "coin" / "summary.csv")
    all_ok = all(r["value"] == "1" for r in rows if r["quantity"] == "diagnostics_ok")
    # --quick runs 2 x 200 draws, usually short of ESS 400: --strict then exits 1 and says why.
    assert done.returncode == (0 if all_ok else 1)
    if not all_ok:
        assert "--strict:" in done.stderr and "ESS" in done.stderr


def test_saved_posterior_opens_with_arviz_and_carries_provenance(coin_quick):
    out, _ = coin_quick
    idata = az.from_netcdf(out / "results" / "coin" / "weights_as_given.nc")
    assert {"posterior", "log_likelihood", "posterior_predictive", "constant_data"} <= set(idata.groups())
    np.testing.assert_array_equal(idata.constant_data["weights"].values, [1, 1, 10, 1, 1, 1, 1, 1, 1, 1])
    attrs = idata.attrs
    assert attrs["random_seed"] >= 0 and attrs["sampler"] == "pymc" and attrs["draws"] == cli.QUICK["draws"]
    assert attrs["version_pymc"].startswith("5.28") and "openblas" in attrs["pytensor_blas_ldflags"]
    assert "diagnostics_max_r_hat" in attrs and "diagnostics_ok" in attrs


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["nonsense"], "invalid choice"),
        (["coin", "--draws", "0"], "must be >= 1"),
        (["coin", "--chains", "two"], "expected an integer"),
        (["coin", "--sampler", "stan"], "invalid choice"),
        (["coin", "--seed", "-1"], "must be >= 0"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(arguments, message, capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(arguments)
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and message in error and "Traceback" not in error


def test_out_that_is_a_file_exits_2_and_writes_nothing(tmp_path, capsys):
    target = tmp_path / "a_file"
    target.write_text("")
    assert cli.main(["coin", "--quick", "--out", str(target)]) == 2
    assert "not a writable directory" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


def test_bad_input_data_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, monkeypatch):
    def refuse(settings, output):
        raise InputError("flips must hold only 0 (tails) and 1 (heads)")

    monkeypatch.setattr("analyses.coin.main", refuse)
    assert cli.main(["coin", "--quick", "--out", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert error == "python -m analyses coin: error: flips must hold only 0 (tails) and 1 (heads)\n"
    assert list(tmp_path.iterdir()) == []


def test_same_seed_gives_identical_draws_and_tables(coin_quick, tmp_path, capsys):
    """The same command in this process (other imports before it, other models compiled) repeats the
    command-line run's tables and draws exactly; ``--quiet`` silences the progress and nothing else."""
    out, _ = coin_quick
    code = cli.main(["coin", "--quick", "--seed", "7", "--out", str(tmp_path), "--quiet"])
    printed = capsys.readouterr()
    assert code in (0, 1), printed.err
    assert "coin: fitting" not in printed.err and "== coin: summary" in printed.out
    assert "files written" in printed.err
    for table in ("summary.csv", "weight_sweep.csv"):
        assert (tmp_path / "results/coin" / table).read_text() == (out / "results/coin" / table).read_text()
    for posterior in COIN_POSTERIORS:
        first = az.from_netcdf(out / "results/coin" / posterior)
        second = az.from_netcdf(tmp_path / "results/coin" / posterior)
        np.testing.assert_array_equal(first.posterior["p"].values, second.posterior["p"].values)
        np.testing.assert_array_equal(first.posterior_predictive["heads"].values,
                                      second.posterior_predictive["heads"].values)


def test_a_killed_run_leaves_every_previous_result_readable(coin_quick, tmp_path):
    out, _ = coin_quick
    shutil.copytree(out, tmp_path, dirs_exist_ok=True)
    files = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    before = {p: p.stat().st_mtime_ns for p in files}
    process = subprocess.Popen([sys.executable, "-m", "analyses", "coin", "--quick", "--seed", "8",
                                "--out", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while all(p.stat().st_mtime_ns == before[p] for p in files) and process.poll() is None:
        assert time.monotonic() < deadline, "the run wrote nothing in 300 s"
        time.sleep(0.02)
    process.kill()  # SIGKILL: no clean-up code runs
    assert process.wait() != 0, "the run finished before it could be killed"
    replaced = [p for p in files if p.stat().st_mtime_ns != before[p]]
    assert replaced and len(replaced) < len(files)  # killed mid-run: some new, some old files
    for path in files:
        if path.suffix == ".csv":
            with open(path, newline="") as handle:
                assert len(list(csv.DictReader(handle))) > 0
        elif path.suffix == ".nc":
            assert az.from_netcdf(path).posterior["p"].size > 0
        else:
            assert plt.imread(path).ndim == 3


def test_a_bug_is_not_disguised_as_bad_input(tmp_path, monkeypatch):
    def broken(settings, output):
        raise ValueError("operands could not be broadcast together")

    monkeypatch.setattr("analyses.coin.main", broken)
    with pytest.raises(ValueError, match="broadcast"):
        cli.main(["coin", "--quick", "--out", str(tmp_path)])


def test_all_checks_every_analysis_before_writing_anything(tmp_path, capsys):
    # 40 x 2 draws are fine for the coin but too few for calibration's quantiles and sbc's ranks:
    # the first refusal ends the run, and nothing may be written.
    assert cli.main(["all", "--quick", "--draws", "40", "--chains", "2", "--out", str(tmp_path)]) == 2
    assert "calibration needs at least" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_creation_backtraces_are_off_unless_the_user_sets_them(monkeypatch):
    import pytensor

    monkeypatch.setattr(pytensor.config, "traceback__limit", 8)
    monkeypatch.setenv("PYTENSOR_FLAGS", "traceback__limit=8")
    models.configure(creation_backtraces=False)
    assert pytensor.config.traceback__limit == 8   # the user's setting is kept
    monkeypatch.setenv("PYTENSOR_FLAGS", "")
    models.configure(creation_backtraces=False)
    assert pytensor.config.traceback__limit == 0
