"""Files are written whole or not at all, with ordinary permissions."""

import csv
import os
import stat
import time

import matplotlib.pyplot as plt
import pytest

from analyses.output import Output


def test_table_is_replaced_whole_and_readable(tmp_path):
    output = Output(tmp_path, "demo")
    path = output.table([{"model": "m", "estimator": "mle", "quantity": "p", "value": 0.25}])
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    expected = {"model": "m", "estimator": "mle", "quantity": "p", "value": "0.25", "lower": "", "upper": ""}
    assert rows == [expected]
    assert stat.S_IMODE(path.stat().st_mode) & 0o044  # group/other can read, unlike mkstemp's 0600


def test_a_failed_write_leaves_the_previous_file_and_no_debris(tmp_path):
    output = Output(tmp_path, "demo")
    path = output.table([{"model": "old", "estimator": "mle", "quantity": "p", "value": 1.0}])
    before = path.read_text()
    class Unwritable:
        def __str__(self):
            raise RuntimeError("disk gone")

    rows = [{"model": "new", "value": 1.0}] * 1000 + [{"model": Unwritable()}]
    with pytest.raises(RuntimeError, match="disk gone"):  # fails after 1000 rows were written
        output.table(rows)
    assert path.read_text() == before
    assert [p.name for p in path.parent.iterdir()] == ["summary.csv"]


def test_figure_is_saved_and_closed(tmp_path):
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    path = Output(tmp_path, "demo").figure(fig, "line.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not plt.fignum_exists(fig.number)


def test_old_debris_of_a_killed_write_is_removed_and_fresh_debris_kept(tmp_path):
    folder = tmp_path / "results" / "demo"
    folder.mkdir(parents=True)
    old, fresh = folder / ".summary.csv.x1y2.part", folder / ".ranks.csv.a3b4.part"
    for debris in (old, fresh):
        debris.write_text("half a table")
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    Output(tmp_path, "demo")
    assert not old.exists() and fresh.exists()  # fresh: perhaps a concurrent run still writing
