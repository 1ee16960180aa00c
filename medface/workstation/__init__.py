"""The workstation: a browser app on 3D Slicer's core (slicer-core + trame-slicer) and Slicer
scene bundles (``.mrb``) written from results. docs/workstation.md.

Importing this package is cheap; slicer-core and trame load only when a function needs them.
"""
