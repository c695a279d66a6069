"""``python -m progsim`` is the ``progsim`` command."""

import sys

from progsim.cli import main

sys.exit(main())
