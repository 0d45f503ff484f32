"""`python -m sopy_actors.cli`: the same as the `sopy-actors` command."""

import sys

from sopy_actors.cli import main

sys.exit(main())
