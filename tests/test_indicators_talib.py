"""`trading-agent indicators` agrees with TA-Lib (the reference implementation, through its Python
package) to 1e-6 relative after the warm-up, and warms up on exactly the same candle, on every bundled
real price series (including their gaps and flat zero-volume hours)."""

import pathlib

import pytest

import talib_compare

DATA = sorted((pathlib.Path(__file__).resolve().parent.parent / "data").glob("*.csv.gz"))


@pytest.mark.parametrize("path", DATA, ids=[p.name for p in DATA])
def test_indicators_agree_with_talib(path):
    report = talib_compare.compare(path)
    assert set(report) == set(talib_compare.talib_columns(talib_compare.read_ohlcv(path)))
    faults = {name: r for name, r in report.items() if r[1] != 0}
    assert not faults, f"columns over {talib_compare.RELATIVE_TOLERANCE} relative (rows, bad, worst, first): {faults}"
    # every column was really compared, over nearly the whole series
    assert min(rows for rows, *_ in report.values()) > 0.99 * len(talib_compare.read_ohlcv(path)["close"])
