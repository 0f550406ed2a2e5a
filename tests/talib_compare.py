"""Compare `trading-agent indicators` with TA-Lib (the `TA-Lib` Python package) on a candle file.

Used by tests/test_indicators_talib.py, and by hand:
    target/py/bin/python tests/talib_compare.py data/BTCUSDT-1h.csv.gz
"""

import csv
import gzip
import io
import math
import pathlib
import subprocess
import sys

import numpy as np
import talib

ROOT = pathlib.Path(__file__).resolve().parent.parent
AGENT = ROOT / "target" / "debug" / "trading-agent"
RELATIVE_TOLERANCE = 1e-6


def read_ohlcv(path):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt") as f:
        rows = list(csv.DictReader(f))
    return {k: np.array([float(r[k]) for r in rows]) for k in ("open", "high", "low", "close", "volume")}


def talib_columns(c):
    high, low, close, volume = c["high"], c["low"], c["close"], c["volume"]
    macd, signal, hist = talib.MACD(close, 12, 26, 9)
    upper, middle, lower = talib.BBANDS(close, 20, 2.0, 2.0, talib.MA_Type.SMA)
    slowk, slowd = talib.STOCH(high, low, close, 14, 3, talib.MA_Type.SMA, 3, talib.MA_Type.SMA)
    return {
        "sma_20": talib.SMA(close, 20),
        "ema_20": talib.EMA(close, 20),
        "rsi_14": talib.RSI(close, 14),
        "macd": macd,
        "macd_signal": signal,
        "macd_hist": hist,
        "bb_upper": upper,
        "bb_middle": middle,
        "bb_lower": lower,
        "stoch_k": slowk,
        "stoch_d": slowd,
        "willr_14": talib.WILLR(high, low, close, 14),
        "cci_20": talib.CCI(high, low, close, 20),
        "adx_14": talib.ADX(high, low, close, 14),
        "atr_14": talib.ATR(high, low, close, 14),
        "obv": talib.OBV(close, volume),
    }


def ours(path):
    out = subprocess.run([str(AGENT), "indicators", "--input", str(path)], check=True,
                         capture_output=True, text=True).stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    return {k: np.array([float(r[k]) if r[k] != "" else math.nan for r in rows]) for k in rows[0]}


def compare(path):
    """Per column: (rows compared, rows over tolerance, worst relative error, first row at fault)."""
    theirs = talib_columns(read_ohlcv(path))
    mine = ours(path)
    report = {}
    for name, expected in theirs.items():
        got = mine[name]
        # same warm-up: a value exactly where TA-Lib has one
        warm_mismatch = np.flatnonzero(np.isnan(got) != np.isnan(expected))
        both = ~np.isnan(expected) & ~np.isnan(got)
        # relative to the column's scale where a value crosses zero (MACD histogram, CCI, OBV)
        scale = np.maximum(np.abs(expected), np.nanmedian(np.abs(expected)) * 1e-3)
        error = np.where(both, np.abs(got - expected) / np.where(scale == 0, 1, scale), 0)
        bad = np.flatnonzero(error > RELATIVE_TOLERANCE)
        first = int(min([*warm_mismatch[:1], *bad[:1]], default=-1))
        report[name] = (int(both.sum()), int(len(bad) + len(warm_mismatch)), float(error.max()), first)
    return report


if __name__ == "__main__":
    for path in sys.argv[1:]:
        print(path)
        for name, (n, bad, worst, first) in compare(path).items():
            print(f"  {name:12} rows={n:7} bad={bad:5} worst_rel={worst:.3e} first_bad={first}")
