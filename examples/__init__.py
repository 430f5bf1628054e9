"""Runnable examples: each module has `main()` and runs with `python examples/<name>.py`."""
