"""The bit-exact report of a simulation (NumPy only; Jinja2 renders the pages, matplotlib, when
installed, the plots):

* :mod:`.compare`: simulator vs twin, simulator vs float model, accuracy and confusion matrix;
* :mod:`.build`: :func:`build_report`, the report as plain JSON-able data with the one-screen
  headline (``summary``), the three checks of the proof, costs as named figures with units;
* :mod:`.plots`: rasters with mismatches marked, membrane traces, quantization error, cycles per
  step and load per core, confusion matrix, saturations;
* :mod:`.write`: :func:`write_report`, ``report.json`` + ``report.md`` + one self-contained
  ``report.html``, written atomically.
"""

from .build import REPORT_FORMAT, build_report, costs_table, proof_rows, saturation_rows
from .compare import MAX_STEPS_LISTED, compare_traces
from .write import check_report_destination, read_report, render, write_report

__all__ = ["build_report", "write_report", "read_report", "check_report_destination", "compare_traces", "render",
           "costs_table", "proof_rows", "saturation_rows", "REPORT_FORMAT", "MAX_STEPS_LISTED"]
