"""What pricebench writes for other tools, and the one rule for every folder it writes.

owned.py: a folder pricebench writes (report, exports, curate) holds a marker listing the files it
wrote; it replaces only those, never a user's file. lm_eval.py: a task as an lm-evaluation-harness
task folder. eee.py (+ eee_records.py): stored runs as Every Eval Ever records. This module imports
nothing, so report/ and curate/ use owned.py without pulling in the exports.
"""
