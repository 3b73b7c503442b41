import pandas as pd

from reports.markdown import table


def test_markdown_table_formats_and_escapes():
    df = pd.DataFrame({"model": ["a|b", "c"], "p50": [1.234, float("nan")], "n": [3, 4]})
    md = table(df, {"model": "model", "p50": "p50 ms"}, digits=1)
    assert md.splitlines() == ["| model | p50 ms |", "|---|---|", "| a\\|b | 1.2 |", "| c | – |"]
