"""Serving: load and score a packaged model, the request contract, the Bento service, batch, Spark and drift.

Uses ml/'s public interface (the data contract, the explainer, classes stored in models), never a stage;
never imports ops/.
"""
