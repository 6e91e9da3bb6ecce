"""`pricebench` command line: verbs that read like sentences (`pricebench --help`; README's Usage).

One module per verb group, each verb's arguments declared beside its handler: data.py (tasks,
curate), run.py (run, show, compare, verify), suite.py (suite, report), exports.py (export
runs|eee|lm-eval and their old names export-runs|export-eee|export-lm-eval, import),
finetune.py, options.py (a backend's options). common.py holds what every verb shares (the
Verb class, --store/--data-dir/--debug, error lines); app.py the verb table and `main`.
"""
from harness.cli.app import main

__all__ = ["main"]
