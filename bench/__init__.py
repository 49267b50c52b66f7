"""Benchmarks of gradtx against optax on the same trees, in the same process.

``python -m bench`` (or ``make bench``) runs every case in interleaved rounds (gradtx,
optax, optax, gradtx, ...) and reports medians, so that a machine whose load drifts
during the run biases neither library. Results are ratios gradtx/optax measured side by
side, and for large leaves the fraction of the bandwidth floor: the bytes a step must
move at least once, over the copy bandwidth measured in the same run. ``--quick`` runs
tiny versions of every case in seconds (the smoke test uses it); its figures mean
nothing. See ``bench/NOTES.md`` for what each change predicted and measured.
"""
