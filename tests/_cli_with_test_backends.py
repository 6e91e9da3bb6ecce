"""`python tests/_cli_with_test_backends.py ARGS`: the real pricebench CLI, plus the test-only
backends (`slowtest:`, `testonly:`), for tests that need a separate process (signals, races)."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

import _slow_predictor  # noqa: E402
import _suite_support  # noqa: E402
from harness.cli import main  # noqa: E402

if __name__ == "__main__":
    _slow_predictor.register()
    _suite_support.register()
    sys.exit(main(sys.argv[1:]))
