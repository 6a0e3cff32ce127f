"""Benchmarking: ``rlenv bench`` grids of algorithms x tasks x seeds (:mod:`~agents.benchmarking.bench`),
their statistics (:mod:`~agents.benchmarking.bench_stats`: IQM, stratified-bootstrap intervals,
probability of improvement, performance profiles) and the written report
(:mod:`~agents.benchmarking.bench_report`). Each cell is a training run scored by
:mod:`agents.training.evaluation`'s held-out protocol."""
