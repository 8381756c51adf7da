"""GridLoop benchmarks: run `python -m bench.run --help`."""

import os
import secrets

# The app refuses to start without a real secret key: the benchmark's apps and servers share a random one.
os.environ.setdefault("GRIDLOOP_APP_SECRET_KEY", secrets.token_hex(32))
