"""Numbers to text for reports: one place that decides how a missing value reads.

Every helper takes anything (None, NaN, inf, numpy scalars, strings) and returns text that never
says "nan" or "None": a missing figure reads as DASH, or as the `missing` text given.
"""

from __future__ import annotations

from typing import Any

from contracts.numbers import number  # also the reports' fmt.number

DASH = "–"


def num(value: Any, digits: int = 2, missing: str = DASH) -> str:
    x = number(value)
    return missing if x is None else f"{x:,.{digits}f}"


def sig(value: Any, digits: int = 3, missing: str = DASH) -> str:
    """Significant figures with thousands separators: 0.00412, 5.05, 1,107, 2.63e+09."""
    x = number(value)
    if x is None:
        return missing
    if x != 0 and abs(x) < 1e-3:
        return f"{x:.{digits - 1}e}"
    return f"{x:,.{digits}g}" if abs(x) < 10 ** digits else f"{x:,.0f}"


def usd(value: Any, missing: str = DASH) -> str:
    x = number(value)
    if x is None:
        return missing
    sign = "-" if x < 0 else ""
    x = abs(x)
    return f"{sign}${x:,.2f}" if 0 < x < 100 else f"{sign}${x:,.0f}"


def usd_band(mid: Any, lo: Any, hi: Any, missing: str = DASH) -> str:
    """$1,107 ($900–$1,300); the band only where it differs from the point."""
    if number(mid) is None:
        return missing
    if number(lo) is None or number(hi) is None or abs(number(hi) - number(lo)) < 0.005:
        return usd(mid)
    return f"{usd(mid)} ({usd(lo)}–{usd(hi)})"


def pct(value: Any, digits: int = 1, missing: str = DASH) -> str:
    x = number(value)
    return missing if x is None else f"{100 * x:.{digits}f}%"


def pct_band(band: Any, digits: int = 1, missing: str = DASH) -> str:
    if not isinstance(band, (list, tuple)) or len(band) != 2:
        return missing
    lo, hi = (number(b) for b in band)
    if lo is None or hi is None:
        return missing
    return f"{pct(lo, digits)}–{pct(hi, digits)}"


def params(value: Any, missing: str = DASH) -> str:
    """14.4 M, 273 k, 7 B."""
    x = number(value)
    if x is None:
        return missing
    for scale, unit in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= scale:
            return f"{x / scale:.3g} {unit}"
    return f"{x:.0f}"


def months(value: Any, missing: str = "never (no savings)") -> str:
    x = number(value)
    return missing if x is None else f"{x:.1f} months"


def text(value: Any, missing: str = DASH) -> str:
    """Any value as display text: booleans as yes/no, numbers via sig(), lists joined."""
    if value is None:
        return missing
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        parts = [text(v, "") for v in value]
        return ", ".join(p for p in parts if p) or missing
    if isinstance(value, str):
        return value if value.strip() and value.strip().lower() not in ("nan", "none") \
            else missing
    if number(value) is None:
        return missing
    return sig(value)
