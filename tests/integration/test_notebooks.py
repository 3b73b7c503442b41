"""The notebooks in notebooks/ execute top to bottom (nbclient, a fresh ipykernel), writing
their run directories into a temporary directory (ROI_NOTEBOOK_OUT).

The walkthrough's run is the same question as the session's `roi run --quick` (force: true,
tests/integration/conftest.py): the notebook resumes a copy of that finished run directory
through the Python API (its own "rerunning resumes" path), so the suite runs the pipeline once;
every cell still executes and reads the run's files."""

import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # each runs the pipeline (the walkthrough: `roi run --quick`)

nbformat = pytest.importorskip("nbformat")  # the dev extra
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


@pytest.mark.parametrize("name", ["01_walkthrough.ipynb", "02_bring_your_own_model.ipynb"])
def test_notebook_runs(name, tmp_path, monkeypatch, request):
    if name.startswith("02"):
        pytest.importorskip("transformers")
    else:  # the walkthrough's RUN: ROI_NOTEBOOK_OUT/walkthrough
        shutil.copytree(request.getfixturevalue("quick_run")[0], tmp_path / "walkthrough")
    monkeypatch.setenv("ROI_NOTEBOOK_OUT", str(tmp_path))
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute()  # raises CellExecutionError naming the cell on any failure
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                      for o in c.get("outputs", []))
    assert "report: " in outputs  # each ends in the one-line answer
    if name.startswith("01"):  # it resumed the finished run: no step ran again
        assert "] distill: finished earlier, skipped" in outputs, outputs[-3000:]
    assert not any(o.get("output_type") == "error" for c in nb.cells
                   for o in c.get("outputs", []))
