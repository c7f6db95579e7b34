import sys

from vbench_suite.cli import main

sys.exit(main())
