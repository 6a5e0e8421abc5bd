"""`python -m rewarm.cli ARGS`: the `rewarm` command, for when its script is not on PATH."""

import sys

from rewarm.cli import main

sys.exit(main())
