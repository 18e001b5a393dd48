"""``python -m sonic.cv_results``: see :mod:`sonic.cv_results.cli`."""
from sonic.cv_results.cli import main

main()
