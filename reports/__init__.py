"""reports: pure functions from tables and plans to Markdown, HTML and figures.

    report = reports.build(run_dir)                  # or build(results_df, plan, metrics)
    report = reports.build_files(plan, results)      # from files: plan.json, results.csv
    reports.write(report, out_dir)                   # report.md, report.html, figures/*.png
    reports.write_figures(reports.plan_figures(plan), out_dir)  # out_dir/figures/*.png
    reports.render_run_dir(run_dir)                  # both, into run_dir/report
    reports.select(report, *reports.PARTS["sizing"]) # a subset: the hardware-sizing report
"""

from .document import Report, select
from .report import (PARTS, Written, build, build_files, plan_figures, render_run_dir, write,
                     write_figures, write_with_parts)

__all__ = ["PARTS", "Report", "Written", "build", "build_files", "plan_figures",
           "render_run_dir", "select", "write", "write_figures", "write_with_parts"]
