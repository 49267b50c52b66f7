"""Gradient transforms, one private module per family; the public names live in ``gradtx``."""
