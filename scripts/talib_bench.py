"""TA-Lib's batch functions over the same 1M candles as agent/benches/indicators.rs (the bundled real
BTCUSDT hourly series repeated end to end, rescaled at each seam): nanoseconds per candle, per function
and for all of them together (best of 5 runs)."""

import csv
import gzip
import pathlib
import time

import numpy as np
import talib

ROOT = pathlib.Path(__file__).resolve().parent.parent
N = 1_000_000


def million():
    with gzip.open(ROOT / "data" / "BTCUSDT-1h.csv.gz", "rt") as f:
        rows = list(csv.DictReader(f))
    cols = {k: np.array([float(r[k]) for r in rows]) for k in ("open", "high", "low", "close", "volume")}
    parts = {k: [] for k in cols}
    scale, total = 1.0, 0
    while total < N:
        for k in cols:
            parts[k].append(cols[k] * (scale if k != "volume" else 1.0))
        total += len(rows)
        scale *= cols["open"][0] / cols["close"][-1]
    return {k: np.concatenate(v)[:N].copy() for k, v in parts.items()}


def main():
    c = million()
    h, l, cl, v = c["high"], c["low"], c["close"], c["volume"]
    functions = {
        "sma_20": lambda: talib.SMA(cl, 20),
        "ema_20": lambda: talib.EMA(cl, 20),
        "rsi_14": lambda: talib.RSI(cl, 14),
        "macd_12_26_9": lambda: talib.MACD(cl, 12, 26, 9),
        "bbands_20_2": lambda: talib.BBANDS(cl, 20, 2.0, 2.0),
        "stoch_14_3_3": lambda: talib.STOCH(h, l, cl, 14, 3, 0, 3, 0),
        "willr_14": lambda: talib.WILLR(h, l, cl, 14),
        "cci_20": lambda: talib.CCI(h, l, cl, 20),
        "adx_14": lambda: talib.ADX(h, l, cl, 14),
        "atr_14": lambda: talib.ATR(h, l, cl, 14),
        "obv": lambda: talib.OBV(cl, v),
    }
    total = 0.0
    print(f"TA-Lib {talib.__ta_version__.decode()} batch, {N} candles, ns per candle (best of 5):")
    for name, f in functions.items():
        best = min(_timed(f) for _ in range(5))
        total += best
        print(f"  {name:14} {best / N * 1e9:8.2f}")
    print(f"  {'all_together':14} {total / N * 1e9:8.2f}")


def _timed(f):
    start = time.perf_counter()
    f()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
