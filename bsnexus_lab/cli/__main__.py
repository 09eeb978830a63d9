import sys

from bsnexus_lab.cli import main

sys.exit(main())
