"""What `roi import` adds to another tool's result file (roi/importers.py reads it): a frozen
pydantic model whose fields' descriptions and defaults are the command's options (derived by
app/cli_options.py). Light (pydantic alone), so the command line builds its options without
importing the readers.
"""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import ConfigDict, Field, ValidationError

from contracts.config import Checked, as_option

CHOICES = {"role": "teacher, student", "device": "cpu, cuda"}


class ImportOptions(Checked):
    """What the command line adds to a file: where it ran and what the file does not say."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    hardware: str = Field(description="The catalog hardware it was measured on (roi hardware "
                          "lists them: h100, a100-80gb, l4, ...).")
    role: Literal["teacher", "student"] = Field(description="teacher or student.")
    model: Optional[str] = Field(None, description="Model name [default: the file's]; the same "
                                 "name as the other tables' rows of that model.")
    dtype: Optional[str] = Field(None, description="fp32, bf16, fp16, int8, int4 (or torch's "
                                 "names) [default: the file's, where it says].")
    params: Optional[int] = Field(None, description="Parameter count [required: none of the "
                                  "formats gives it].")
    device: Optional[Literal["cpu", "cuda"]] = Field(None, description="cuda or cpu [default: "
                                                     "cuda on an accelerator row, cpu on a CPU "
                                                     "instance].")
    batch_size: Optional[int] = Field(None, description="Concurrency / batch the figures were "
                                      "measured at [default: the file's].")
    seq_len: Optional[int] = Field(None, description="Prompt tokens [default: the file's mean "
                                   "prompt; mlperf: required].")

    @classmethod
    def refusal(cls, err: ValidationError) -> str:
        problem = err.errors()[0]
        name = (problem["loc"] or ("",))[0]
        if name in CHOICES and problem["type"] == "literal_error":
            return f"--{name}: allowed {CHOICES[name]}; got {problem['input']!r}"
        return as_option(err, cls)
