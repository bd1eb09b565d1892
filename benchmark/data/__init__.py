"""Datasets: layouts and discovery, image I/O, MATLAB bicubic, the LR and decoded-image caches, downloads."""
