"""pytest set-up shared by every test: the checkout's root on `sys.path`, so the tests'
`from tests.helpers import ...` works from any working directory
(`cd /tmp && python -m pytest <checkout>/tests`)."""

import sys
from pathlib import Path

_CHECKOUT = str(Path(__file__).resolve().parent.parent)
if _CHECKOUT not in sys.path:
    sys.path.insert(0, _CHECKOUT)
