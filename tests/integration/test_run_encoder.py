"""`roi run` on a sentence-embedding encoder (task: embedding, issue 19), end to end on a tiny
BERT built offline and real docstrings: the teacher and its shrunk students benched, a plan
that names its retention metric, the recommended student distilled by the encoder trainer,
exported, its int8 file through the embedding quality gate, and predicted beside achieved."""

import json
from itertools import islice

import pandas as pd
import pytest
import yaml

from app.run import run, summary_line
from distill.encoder_eval import RETENTION_METRIC
from models.corpus import stdlib_documents
from models.encoder import docstrings, save_encoder

from ..unit.encoder_helpers import tiny_encoder_of

pytestmark = pytest.mark.slow  # benches, distills, benches again; still run in CI


@pytest.fixture(scope="module")
def encoder_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("encoder-run")
    save_encoder(tiny_encoder_of(), root / "teacher")
    texts = [t for _, _, t in docstrings(islice(stdlib_documents(), 120))][:400]
    (root / "texts.jsonl").write_text("".join(json.dumps({"body": t}) + "\n" for t in texts))
    (root / "run.yaml").write_text(yaml.safe_dump({
        "task": "embedding", "teacher": "hf:teacher", "data": "texts.jsonl",
        "text_field": "body", "scenarios": ["real-time-api"], "force": True,
        "bench": {"backends": ["torch-eager", "ort-fp32", "ort-int8"], "batch_sizes": [1],
                  "seq_lens": [16], "threads": [1], "isolate": False}}))
    return run(root / "run.yaml", root / "out", quick=True)


def test_the_loop_distills_the_recommended_shrunk_student(encoder_run):
    out, s = encoder_run.out, encoder_run.summary
    plan = json.loads((out / "plan" / "plan.json").read_text())
    assert plan["retention_metric"] == RETENTION_METRIC
    assert "encoder trainer" in plan["trainer_note"]
    assert "/bench/students/layers-" in plan["recommended"]["model"]
    metrics = json.loads((out / "distill" / "metrics.json").read_text())
    assert metrics["settings"]["student"] == plan["recommended"]["model"]
    assert metrics["settings"]["layers"] in (1, 2)  # the 4-layer teacher's half or third
    assert metrics["retention_metric"] == s["retention_metric"] == RETENTION_METRIC
    assert s["achieved_retention"] == metrics["retention"] == metrics["eval"]["student"][
        "spearman"]
    assert -1.0 <= metrics["int8_retention"] <= 1.0
    assert f"achieved retention ({RETENTION_METRIC})" in summary_line(s)


def test_the_distilled_int8_file_passes_the_embedding_gate(encoder_run):
    df = pd.read_csv(encoder_run.out / "bench-student" / "results.csv")
    student = df[(df["role"] == "student") & (df["dtype"] == "int8")].iloc[0]
    assert student["model"] == f"hf:{(encoder_run.out / 'distill').resolve()}"
    assert student["status"] == "ok" and student["gate"] == "pass", student["gate_reason"]
    assert student["gate_similarity_spearman"] >= 0.98


def test_the_report_names_the_tasks_own_metric(encoder_run):
    md = (encoder_run.out / "report" / "report.md").read_text()
    assert f"{RETENTION_METRIC} (torch;" in md and f"{RETENTION_METRIC} (ONNX int8)" in md
    assert "Retention here is the task's own metric" in md
