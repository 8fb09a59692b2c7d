"""Evaluation: metrics, the retrieval and answer benchmarks, and their reports.

It sits above the engine, beside the front ends: it may import `assistant` and `index`, and
nothing below imports it."""
