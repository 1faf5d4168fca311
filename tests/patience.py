"""How long a test waits for what must happen before it calls it a hang.

A bound, never a measurement: a loaded machine may be slow, and a test that passes only when
the machine is quick asserts the machine, not the code. Waits that decide a verdict use this;
it costs time only when something is broken.
"""

from __future__ import annotations

HANG_S = 60.0
