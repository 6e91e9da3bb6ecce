"""Run bundles: carry runs between stores (machines) as one checked file.

`export_runs` (export.py) writes runs of a store into a bundle (archive.py: the file format);
`import_bundle` (importer.py) merges one into a store, all or nothing, by the rules of
harness.runs.merge (the same ones a report over several stores follows). See docs/leaderboards.md,
"Several machines".
"""
from harness.runs.bundles.export import Exported, export_runs
from harness.runs.bundles.importer import Imported, import_bundle

__all__ = ["Exported", "Imported", "export_runs", "import_bundle"]
