"""Chaos suite: mixed workflows under worker kills, Redis crashes and outages (see run.py)."""
