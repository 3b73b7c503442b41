"""contracts: the bottom layer (DESIGN.md "Layers"), what every other package reads and writes.

    contracts.errors     InputError, the one error type for input the user can fix
    contracts.io         atomic writes, output-directory checks and locks
    contracts.config     YAML/JSON readers and pydantic validation with one-line errors
    contracts.results    the results table (bench -> roi): columns, statuses, raw samples,
                         its writer (ResultsStore) and its reader (read_table)
    contracts.curves     the pilot curves (distill -> roi)

Pure Python + numpy/pandas/PyYAML/pydantic: it imports no other package of this project and
never torch or onnxruntime, so the planner-only install (no extras) holds it whole.
"""
