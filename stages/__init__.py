"""Thin DVC stage scripts: parse paths, load params, call sonic, write. Run as `python -m stages.NAME`."""
