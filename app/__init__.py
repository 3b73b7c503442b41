"""app: the application, the top layer (DESIGN.md "Layers"): the `roi` command line (app.cli),
the `roi run` pipeline (app.run, app.runconfig) and the console (app.console).

It may import every layer below it (the planner in roi/, bench, distill, reports, checks); none of
them imports it. Heavy imports (torch, onnxruntime) happen inside the subcommands that need them.
"""
