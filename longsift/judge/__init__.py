"""Judges and benchmark interop: AlpacaEval files and metrics, MT-Bench files, Open LLM benchmarks.

Submodules load their heavy dependencies (alpaca_eval, lm_eval, huggingface_hub) only inside the functions
that need them, so importing this package costs nothing.
"""
