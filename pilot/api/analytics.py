"""Analytics: a least-squares straight line through measured points, and memory-monitor tables.

The pilot uses it to estimate a payload's memory leak: the slope of ``pss+swap`` against time in
the memory monitor's time series (``memory_monitor_output.txt``, prmon or the pilot's own monitor)
goes into jobMetrics as ``leak`` (kB/s), the goodness of the fit as ``chi2``.

``chi2`` is the sum of squared *relative* deviations ``((observed - fitted) / fitted) ** 2``, as
the Pilot 2 reports it (0 when a fitted value is 0). Pure Python: no numpy.

Usage (the Pilot 2 / Pilot 3 call shape)::

    client = Analytics()
    fit = client.fit([0, 1, 2], [1, 3, 5])
    fit.slope(), fit.intersect(), fit.chi2()      # 2.0, 1.0, 0.0
    client.slope()                                # the same values through the client
    client.get_fitted_data("memory_monitor_output.txt")   # {'slope': '..', 'chi2': '..', 'intersect': '..'}
"""

from __future__ import annotations

import logging
import math
from typing import Dict, List, Optional, Sequence, Tuple

from pilot.common.exception import NotDefined, NotImplementedFailure, NotSameLength

logger = logging.getLogger(__name__)

#: fewer points than this give no fit in :meth:`Analytics.get_fitted_data`
MIN_POINTS = 8
#: samples dropped at the start and the end when ``tails=False`` (allocation and release phases)
HEAD_POINTS = 5
TAIL_POINTS = 2


class Fit:
    """A least-squares straight line ``y = slope * x + intersect`` through (x, y)."""

    def __init__(self, x: Sequence[float], y: Sequence[float], model: str = "linear") -> None:
        if model != "linear":
            raise NotImplementedFailure(f"fit model {model!r} is not implemented (only 'linear')")
        if not x or not y:
            raise NotDefined("no data to fit")
        if len(x) != len(y):
            raise NotSameLength(f"x and y differ in length ({len(x)} != {len(y)})")
        self.model = model
        self._x = [float(v) for v in x]
        self._y = [float(v) for v in y]
        n = len(self._x)
        self._xm = sum(self._x) / n
        self._ym = sum(self._y) / n
        sxx = sum((xi - self._xm) ** 2 for xi in self._x)
        sxy = sum((xi - self._xm) * (yi - self._ym) for xi, yi in zip(self._x, self._y))
        # a vertical set of points (all x equal) has no slope
        self._slope: Optional[float] = sxy / sxx if sxx else None
        self._intersect: Optional[float] = (self._ym - self._slope * self._xm) if self._slope is not None else None
        self._chi2: Optional[float] = self._compute_chi2()

    def _compute_chi2(self) -> Optional[float]:
        if self._slope is None:
            return None
        fitted = [self.value(xi) for xi in self._x]
        if any(f == 0 for f in fitted):
            return 0.0
        return sum(((yi - f) / f) ** 2 for yi, f in zip(self._y, fitted))

    def fit(self) -> "Fit":
        return self

    def value(self, x: float) -> float:
        """The line at ``x``."""
        if self._slope is None or self._intersect is None:
            raise NotDefined("the fit has no slope (all x values are equal)")
        return self._slope * x + self._intersect

    def slope(self) -> Optional[float]:
        return self._slope

    def intersect(self) -> Optional[float]:
        return self._intersect

    def chi2(self) -> Optional[float]:
        return self._chi2

    def set_intersect(self) -> None:
        """Pilot 3 name; the intersect is always computed at construction."""

    def __repr__(self) -> str:
        return f"Fit(slope={self._slope}, intersect={self._intersect}, chi2={self._chi2}, n={len(self._x)})"


class Analytics:
    """Fits and memory-monitor tables (the Pilot 2 ``pilot.api.analytics.Analytics`` interface)."""

    def __init__(self, **kwargs: object) -> None:
        self._fit: Optional[Fit] = None

    def fit(self, x: Sequence[float], y: Sequence[float], model: str = "linear") -> Fit:
        """Fit ``y`` against ``x``; the fit is also kept for :meth:`slope` and friends."""
        self._fit = None
        self._fit = Fit(x, y, model=model)
        return self._fit

    def _current(self) -> Fit:
        if self._fit is None:
            raise NotDefined("no fit has been made")
        return self._fit

    def slope(self) -> Optional[float]:
        return self._current().slope()

    def intersect(self) -> Optional[float]:
        return self._current().intersect()

    def chi2(self) -> Optional[float]:
        return self._current().chi2()

    def get_table(self, filename: str, header: Optional[str] = None, separator: str = "\t",
                  convert_to_float: bool = True) -> Dict[str, list]:
        """Read a column table (first line: names) as ``{name: [values]}``.

        Runs of ``separator`` count as one (the old MemoryMonitor header is ``Time\\t\\t\\t\\tVMEM...``);
        ``header`` replaces the file's own first line. Rows with the wrong number of fields or
        values that are not numbers (with ``convert_to_float``) are skipped.
        """
        return read_table(filename, header=header, separator=separator, convert_to_float=convert_to_float)

    def extract_from_table(self, table: Dict[str, list], x_name: str, y_name: str) -> Tuple[list, list]:
        """The x column and the y column; ``y_name`` ``a+b`` adds columns a and b element-wise."""
        x = list(table.get(x_name, []))
        parts = [p.strip() for p in y_name.split("+")]
        columns = [table.get(p) for p in parts]
        if any(col is None for col in columns):
            return x, []
        y = [sum(values) for values in zip(*columns)]
        return x, y

    def get_fitted_data(self, filename: str, x_name: str = "Time", y_name: str = "pss+swap", precision: int = 2,
                        tails: bool = True) -> Dict[str, str]:
        """Fit ``y_name`` against ``x_name`` from a memory-monitor time series.

        Returns ``{'slope', 'chi2', 'intersect'}`` as strings rounded to ``precision`` decimals,
        empty strings when there is no usable fit (missing file or columns, fewer than
        :data:`MIN_POINTS` points). ``tails=False`` drops the first and last samples first.
        """
        empty = {"slope": "", "chi2": "", "intersect": ""}
        try:
            table = self.get_table(filename)
        except OSError as exc:
            logger.debug("no table in %s: %s", filename, exc)
            return empty
        x, y = self.extract_from_table(table, x_name, y_name)
        if len(x) != len(y):
            return empty
        if not tails and len(x) >= MIN_POINTS + HEAD_POINTS + TAIL_POINTS:
            x, y = x[HEAD_POINTS:-TAIL_POINTS], y[HEAD_POINTS:-TAIL_POINTS]
        if len(x) < MIN_POINTS:
            return empty
        try:
            fit = self.fit(x, y)
        except (NotDefined, NotSameLength) as exc:
            logger.warning("cannot fit %s against %s: %s", y_name, x_name, exc)
            return empty
        if fit.slope() is None:
            return empty
        return {"slope": rounded(fit.slope(), precision), "chi2": rounded(fit.chi2(), precision),
                "intersect": rounded(fit.intersect(), precision)}


def rounded(value: Optional[float], precision: int = 2) -> str:
    """``value`` with ``precision`` decimals as text ('' for None or not finite)."""
    if value is None or not math.isfinite(value):
        return ""
    return f"{value:.{max(0, int(precision))}f}"


def read_table(filename: str, header: Optional[str] = None, separator: str = "\t",
               convert_to_float: bool = True) -> Dict[str, list]:
    """See :meth:`Analytics.get_table`."""

    def fields(line: str) -> List[str]:
        parts = line.split(separator) if separator and separator.strip() else line.split()
        return [p.strip() for p in parts if p.strip()]

    table: Dict[str, list] = {}
    names: List[str] = fields(header) if header else []
    with open(filename, errors="replace") as handle:
        for line in handle:
            if not line.strip():
                continue
            if not names:
                names = fields(line)
                table = {name: [] for name in names}
                continue
            if header and not table:
                table = {name: [] for name in names}
                if fields(line) == names:  # the file has its own header line: skip it
                    continue
            values = fields(line)
            if len(values) != len(names):
                continue
            converted: Sequence[object]
            if convert_to_float:
                try:
                    converted = [float(v) for v in values]
                except ValueError:
                    continue
            else:
                converted = values
            for name, value in zip(names, converted):
                table[name].append(value)
    return table
