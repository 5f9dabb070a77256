"""``python -m gantk ...``: the same command line as the ``gantk`` script."""

import sys

from .entry import main

sys.exit(main())
