"""The notebooks in notebooks/ execute top to bottom (nbclient, a fresh ipykernel), writing
their run directories into a temporary directory (ROI_NOTEBOOK_OUT)."""

from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # each runs the pipeline (the walkthrough: `roi run --quick`)

nbformat = pytest.importorskip("nbformat")  # the dev extra
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


@pytest.mark.parametrize("name", ["01_walkthrough.ipynb", "02_bring_your_own_model.ipynb"])
def test_notebook_runs(name, tmp_path, monkeypatch):
    if name.startswith("02"):
        pytest.importorskip("transformers")
    monkeypatch.setenv("ROI_NOTEBOOK_OUT", str(tmp_path))
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute()  # raises CellExecutionError naming the cell on any failure
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                      for o in c.get("outputs", []))
    assert "report: " in outputs  # each ends in the one-line answer
    assert not any(o.get("output_type") == "error" for c in nb.cells
                   for o in c.get("outputs", []))
