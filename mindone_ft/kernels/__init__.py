"""Kernels mindone_ft adds where a MindSpore backend's own are slow; chosen through `mindone_ft.utils.compat`."""
