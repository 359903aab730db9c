"""Where an analysis writes, and how: every file is written whole or not at all.

Each file is first written to a temporary file in the same folder and then renamed over the old
one (``os.replace`` is atomic on POSIX), so a run killed at any moment leaves the previous figures,
tables and posteriors readable. A killed run can leave a hidden ``.NAME.*.part`` file behind; a
later run of the same analysis removes it once it is an hour old.
"""

from __future__ import annotations

import contextlib
import csv
import os
import tempfile
import time
from importlib import metadata
from pathlib import Path

import matplotlib.pyplot as plt
import pytensor

from models.diagnostics import diagnose

COLUMNS = ("model", "estimator", "quantity", "value", "lower", "upper")
_STALE_SECONDS = 3600
_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def _atomic(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(handle)
    try:
        yield Path(temporary)
        os.chmod(temporary, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual permissions
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)


def package_versions() -> dict[str, str]:
    versions = {}
    for package in ("wmle", "pymc", "pytensor", "arviz", "numpy", "scipy"):
        try:
            versions[f"version_{package}"] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[f"version_{package}"] = "not installed"
    versions["pytensor_blas_ldflags"] = pytensor.config.blas__ldflags or "none"
    return versions


class Output:
    """Files of one analysis: ``ROOT/figures/NAME/`` and ``ROOT/results/NAME/``."""

    def __init__(self, root: Path, name: str):
        self.name = name
        self.figures = Path(root) / "figures" / name
        self.results = Path(root) / "results" / name
        self.written: list[Path] = []
        stale = time.time() - _STALE_SECONDS  # younger .part files may belong to a concurrent run
        for folder in (self.figures, self.results):
            for debris in folder.glob(".*.part") if folder.is_dir() else ():
                if debris.stat().st_mtime < stale:
                    debris.unlink(missing_ok=True)

    def figure(self, fig, filename: str) -> Path:
        path = self.figures / filename
        with _atomic(path) as temporary:
            fig.savefig(temporary, format=path.suffix.lstrip("."), dpi=130, bbox_inches="tight")
        plt.close(fig)
        return self._done(path)

    def posterior(self, idata, filename: str, **provenance) -> Path:
        """Save ``idata`` as NetCDF with its provenance in its attrs: what the fit recorded itself
        (settings, seed, verdicts; ``inference.compare`` and ``models.calibrate`` stamp their own),
        ``provenance`` given here, the package versions and the analysis; and, for NUTS draws that
        carry no diagnostics yet, ``inference.diagnose``'s. Draws of other methods keep theirs (a
        bootstrap's failed draws, a sandwich's source diagnostics): NUTS diagnostics would fail them
        by construction."""
        attrs = {**provenance, **package_versions(), "analysis": self.name}
        if idata.attrs.get("method", "nuts") == "nuts" and "diagnostics_ok" not in idata.attrs:
            attrs.update({f"diagnostics_{k}": int(v) if isinstance(v, bool) else v
                          for k, v in diagnose(idata).as_dict().items()})
        idata.attrs.update({k: v if isinstance(v, (int, float)) else str(v) for k, v in attrs.items()})
        path = self.results / filename
        with _atomic(path) as temporary:
            idata.to_netcdf(str(temporary), engine="h5netcdf")
        return self._done(path)

    def table(self, rows: list[dict], filename: str = "summary.csv", columns=COLUMNS) -> Path:
        path = self.results / filename
        with _atomic(path) as temporary, open(temporary, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows({c: _cell(row.get(c)) for c in columns} for row in rows)
        return self._done(path)

    def _done(self, path: Path) -> Path:
        self.written.append(path)
        return path


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return value
