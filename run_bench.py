#!/usr/bin/env python
"""ratbench's command line in a checkout: ``python run_bench.py [COMMAND] ...`` (installed: ``ratbench``).
The command line lives in bench/cli.py (``ratbench.bench.cli``)."""
from __future__ import annotations

import sys

from ratbench.bench.cli import main

if __name__ == "__main__":
    sys.exit(main())
