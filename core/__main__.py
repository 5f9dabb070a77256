"""``python -m gantk ...``: the same command line as the ``gantk`` script."""

import sys

from .cli.entry import main

sys.exit(main())
