"""`python -m harness.cli ARGS` is `pricebench ARGS`."""
import sys

from harness.cli.app import main

sys.exit(main())
