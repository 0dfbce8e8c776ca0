"""Benchmarks: our engine against raw Celery, Celery with a result backend, and DBOS, on the same workloads.

Run ``python -m bench.run`` (see ``bench/run.py`` and the README section "Benchmarks"). Not part of the
installed package: it is a tool for measuring, and the test suite only runs a tiny smoke version of it.
"""
