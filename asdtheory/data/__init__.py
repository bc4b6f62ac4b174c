"""Datasets: DCASE Task 2 layouts and the synthetic data of the notebooks."""
