"""What `roi distill-encoder` distills on besides the trainer's settings (--set, EncoderConfig):
the data and its columns, the task, the student, and what runs beside the distillation. A frozen
pydantic model whose fields' descriptions and defaults are the command's options (derived by
app/cli_options.py); light (pydantic alone), so the command line builds them without torch.
distill/encoder_pipeline.py `run` takes it whole.
"""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import ConfigDict, Field, ValidationError

from contracts.config import Checked, as_option
from contracts.defaults import ENCODER_TASKS


class EncoderInputs(Checked):
    """The data, task, student and extras of one `roi distill-encoder` run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    data: str = Field("stdlib", description="stdlib (the standard library's docstrings, "
                      "labeled for the task) or a .jsonl, .csv or .parquet file or a datasets "
                      "directory.")
    text_field: str = Field("text", description="The column holding each row's text (a "
                            "cross-encoder's query).")
    pair_field: Optional[str] = Field(None, description="Cross-encoder: the column holding the "
                                      "text scored with it.")
    label_field: Optional[str] = Field(None, description="The column holding labels (optional; "
                                       "rows without one are distilled on the teacher's "
                                       "outputs alone).")
    negative_field: Optional[str] = Field(None, description="Cross-encoder with --set "
                                          "loss=margin-mse: the column holding each row's "
                                          "negative (the pair is its positive).")
    task: Literal[("auto", *ENCODER_TASKS)] = Field("auto", description="auto (the "
                                                    "checkpoint's head), embedding, "
                                                    "classification or cross-encoder.")
    student: Optional[str] = Field(None, description="A student hf:DIR with the teacher's "
                                   "tokenizer [default: the teacher shrunk to --set layers].")
    baseline: bool = Field(True, description="Also train the student from scratch on the "
                           "labels, without the teacher (labeled data only).")
    export: bool = Field(True, description="Export the student to ONNX (student.onnx, "
                         "student.int8.onnx: embeddings, or the head's logits) and measure "
                         "both (against the teacher; a head's against torch).")

    @classmethod
    def refusal(cls, err: ValidationError) -> str:
        problem = err.errors()[0]
        if problem["loc"] == ("task",) and problem["type"] == "literal_error":
            return (f"--task {problem['input']}: expected one of auto, "
                    f"{', '.join(ENCODER_TASKS)}")
        return as_option(err, cls)
