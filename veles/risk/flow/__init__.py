"""Toxic-flow detection: incremental, explainable detectors over the deals and quotes an engine
already sees (no I/O). Definitions follow /work/shared/TOXIC-FLOW.md; see the README's "Toxic
flow" section for the thresholds and the measured accuracy."""
