"""ratbench harness: sweep spec -> cases -> measurement rows -> results file -> tables, plots.

Modules, one job each:
    sweep     sweep grammar (sizes like 4k, globs), presets, expansion into hashable cases
    cases     family adapters: inputs and the callables timed per mode (train / prefill / decode)
    timing    CUDA-event / CUDA-graph / wall-clock timing with warm-up, L2 flush and statistics
    memory    peak device memory, out-of-memory detection and clean-up
    costs     FLOPs and minimum bytes per family and mode (the cost model)
    accuracy  each implementation against its family reference before it is timed
    device    device metadata, NVML sampling, measured ceilings (matmul rate, copy bandwidth)
    runner    runs the cases of a sweep and appends one row per finished case
    rank_files the per-rank rows files of a torchrun launch (distributed) and their merge
    results   rows, JSON Lines results file, run metadata, loading into pandas, resume
    report    report.md (and exports), always regenerated from a results file: report_rows (series,
              baseline, speed-ups), tables (Markdown), figures (matplotlib), paper, profile_report
"""
