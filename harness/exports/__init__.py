"""What pricebench writes for other tools: lm_eval.py, a task as an lm-evaluation-harness task
folder; eee.py (+ eee_records.py), stored runs as Every Eval Ever records. Both write their folders
by harness/owned.py's one rule (a marker lists the files pricebench wrote; it replaces only those).
"""
