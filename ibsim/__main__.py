"""`python -m ibsim`: run the embedded IB Gateway in the foreground (same as `ibw gateway`)."""

import sys

from ibsim.cli import main

sys.exit(main())
