"""`roi plan --teacher config:...`: the plan for a model known only by its architecture."""

import json
import re

from app.cli import main
from contracts.plan import PLAN_VERSION
from reports import figure_kit


def test_config_teacher_plans_from_projections(tmp_path, capsys):
    out = tmp_path / "plan"
    assert main(["plan", "--teacher", "config:llama-3-70b", "--scenario", "cloud-batch",
                 "--out", str(out)]) == 0
    doc = json.loads((out / "plan.json").read_text())
    assert {"decision", "recommended", "scenarios", "trainer"} <= doc.keys()
    assert list(doc)[:2] == ["kind", "version"] and doc["version"] == PLAN_VERSION  # as measured
    (sc,) = doc["scenarios"]
    rows = {m["model"]: m for m in sc["models"]}
    chosen = rows[doc["recommended"]["model"]]
    assert chosen["role"] == "student" and chosen["meets_sla"]
    assert chosen["retention_low"] >= doc["retention_threshold"]
    cheaper = [m for m in sc["models"] if m["role"] == "student"
               and m["usd_per_month"] < chosen["usd_per_month"]]
    assert all(m["retention_low"] < 0.95 for m in cheaper)  # the cheapest that qualifies
    assert all(m["source"] == "projected" for m in sc["models"])
    assert (out / "plan.yaml").is_file() and "| model |" in (out / "plan.md").read_text()
    assert "projected, not measured" in capsys.readouterr().out


def test_config_teacher_report_for_real_time_and_cloud_batch(tmp_path, capsys):
    out = tmp_path / "plan"
    assert main(["plan", "--teacher", "config:llama-3-70b", "--scenario", "real-time-api",
                 "--scenario", "cloud-batch", "--out", str(out)]) == 0
    doc = json.loads((out / "plan.json").read_text())
    assert [sc["scenario"] for sc in doc["scenarios"]] == ["real-time-api", "cloud-batch"]
    page = (out / "report" / "report.html").read_text()
    md = (out / "report" / "report.md").read_text()
    if figure_kit.missing():  # the planner-only install (CI's clean venv): no matplotlib
        assert md.count("matplotlib is not installed: pip install 'distill-roi[figures]'") == 3
        assert not (out / "report" / "figures").exists()
    else:
        for name in ("llm-cost", "llm-latency", "llm-retention"):
            png = out / "report" / "figures" / f"{name}.png"
            assert png.stat().st_size > 5_000 and f"figures/{name}.png" in md
        assert page.count("data:image/png;base64,") == 3  # self-contained
    rec = doc["recommended"]["model"]
    assert f"distill config:llama-3-70b to {rec}" in md
    visible = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page)
    for text in (visible, md):
        assert "real-time-api" in text and "cloud-batch" in text
        assert not re.search(r"\bnan\b", text, re.I) and "None" not in text
    assert "report/report.html" in capsys.readouterr().out


def test_plan_needs_results_or_a_config_teacher(tmp_path, capsys):
    assert main(["plan", "--scenario", "cloud-batch", "--out", str(tmp_path / "a")]) == 2
    assert main(["plan", "--teacher", "builtin:teacher", "--scenario", "cloud-batch",
                 "--out", str(tmp_path / "b")]) == 2
    assert main(["plan", "--teacher", "config:no-such-model", "--scenario", "cloud-batch",
                 "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("error: ") for line in err)
    assert not any((tmp_path / d).exists() for d in "abc")
