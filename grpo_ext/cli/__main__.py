"""``python -m grpo_ext.cli``: what ``accelerate launch -m grpo_ext.cli train RECIPE`` runs."""

import sys

from . import main

sys.exit(main())
