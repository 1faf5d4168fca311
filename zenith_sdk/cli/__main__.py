"""``python -m zenith_sdk.cli``: the ``zenith`` command where the console script is not installed."""

from __future__ import annotations

import sys

from zenith_sdk.cli import main

sys.exit(main())
