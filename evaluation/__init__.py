"""Evaluation: `evaluate` metric modules (CRA, PELM, SLUE) and benchmark runners."""
