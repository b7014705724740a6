"""What the sub-commands that span several layers do, as plain functions the CLI calls:
train (one adapter or several), demo, eval (the eval command, multi-adapter folders
included), predict, data (synth and export). Commands that live in one layer are that
layer's own functions (experiments.grid_command, export.export_command, serving.server, ...).
"""
