"""`python -m keycardd.cli` is `keycardctl`."""

import sys

from keycardd.cli import main

sys.exit(main())
