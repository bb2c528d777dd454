"""Model-level generation throughput (the paper's Table 1), used by the harness (bench/levels.py).

``measure_generation(config, ...)``:
1. builds the model (random weights, ``dtype``) on ``device``;
2. batch: the given one, or the largest that fits (models.max_generate_batch: doubling then bisection on
   out-of-memory of a probe that allocates the full caches, prefills one piece and runs decode steps);
3. warm-up and graph check at a small batch (at most ``check_batch`` sequences): an eager generate and, when
   CUDA graphs are asked for, a graph generate of a few chunks of tokens; their greedy tokens are compared
   (bf16 logits of a random model have near-ties, so a different kernel choice inside a capture can flip
   one argmax: the fraction of equal sequences tells a flip from a bug);
4. the timed generate: a real prefill of a random prompt (in pieces of ``prefill_batch`` sequences), then
   n_new - 1 decode steps; if it runs out of memory at the searched batch (graph pools are not in the
   probe), the batch is lowered by 1/8 and tried again (at most ``oom_retries`` times; the result says so).
Tokens per second = batch * n_new / (prefill + decode seconds), as Table 1 counts generation; the decode
steps alone are reported too.
"""
from __future__ import annotations

import gc
import logging
import time
from dataclasses import asdict, dataclass, field

import torch

from ratbench.bench.memory import is_oom
from ratbench.models.lm import LanguageModel, LMConfig, max_generate_batch

log = logging.getLogger(__name__)

#: prompt tokens per prefill piece (bounds the prefill's activation memory at a large batch)
PREFILL_TOKENS = 262144


@dataclass
class Generation:
    """What ``measure_generation`` measured (times in seconds, memory in bytes)."""

    mixer: str
    impls: dict
    params: int
    batch: int
    prompt_len: int
    n_new: int
    tokens_per_s: float | None = None
    decode_tokens_per_s: float | None = None
    prefill_s: float | None = None
    decode_s: float | None = None
    capture_s: float | None = None
    cache_bytes: int | None = None
    peak_bytes: int | None = None
    decode_mode: str | None = None
    graph_note: str | None = None
    graph_steps: int | None = None
    max_batch: int | None = None
    max_batch_tried: list = field(default_factory=list)
    max_batch_limit_reached: bool | None = None
    max_batch_search_s: float | None = None
    oom_retries: int = 0
    check_batch: int | None = None
    check_new: int | None = None
    graph_tokens_equal_eager: bool | None = None
    graph_sequences_equal_fraction: float | None = None
    warmup_s: float | None = None
    compiled: bool = False  # every layer's glue torch.compile'd (LanguageModel.compile_glue)

    def to_dict(self) -> dict:
        return asdict(self)


def _free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.empty_cache()


def measure_generation(config: LMConfig, *, device: str = "cuda", dtype: torch.dtype = torch.bfloat16,
                       prompt_len: int = 3072, n_new: int = 1024, batch: int | None = None,
                       max_batch_limit: int = 8192, batch_multiple: int = 8, search_start: int = 64,
                       prefill_batch: int | None = None, graphs: str = "auto", check_batch: int = 8,
                       oom_retries: int = 2, seed: int = 0, compile_glue: bool = False) -> Generation:
    """Generation throughput of the model of ``config`` (module docstring). ``batch=None`` searches the
    largest batch that fits, up to ``max_batch_limit``. ``compile_glue``: torch.compile every layer's glue
    (models.lm.LanguageModel.compile_glue); it compiles in the batch search and the warm-up, before the timed
    generate (the batch dim is dynamic, so the timed batch and prefill pieces reuse those graphs)."""
    dev = torch.device(device)
    torch.manual_seed(seed)
    model = LanguageModel(config, device=dev, dtype=dtype).eval()
    if compile_glue:
        model.compile_glue()
    res = Generation(config.mixer, dict(config.impls), config.n_params(), batch or 0, prompt_len, n_new,
                     compiled=compile_glue)
    pb = prefill_batch or max(1, PREFILL_TOKENS // prompt_len)
    if batch is None:
        t = time.perf_counter()
        mb = max_generate_batch(model, prompt_len, n_new, prefill_batch=pb, start=min(search_start, max_batch_limit),
                                limit=max_batch_limit, multiple=min(batch_multiple, max_batch_limit))
        res.max_batch, res.max_batch_tried = mb.batch, [list(x) for x in mb.tried]
        res.max_batch_limit_reached, res.max_batch_search_s = mb.limit_reached, time.perf_counter() - t
        if mb.batch == 0:
            raise torch.OutOfMemoryError(f"not even batch {min(batch_multiple, max_batch_limit)} fits "
                                         f"(tried {mb.tried})")
        batch = mb.batch
    _free(dev)
    gen = torch.Generator(device=dev).manual_seed(seed)
    # warm-up (compiles and autotunes every kernel the decode uses) and the graph check, at a small batch
    t = time.perf_counter()
    cb = min(batch, check_batch)
    chunk = config.chunk_size if "rat" in config.kinds() else 1
    res.check_batch, res.check_new = cb, min(n_new, 2 * chunk + 3)
    ids = torch.randint(0, config.vocab_size, (cb, prompt_len), device=dev, generator=gen)
    eager = model.generate(ids, res.check_new, graphs="off", prefill_batch=pb)
    if graphs != "off" and dev.type == "cuda":
        g = model.generate(ids, res.check_new, graphs=graphs, prefill_batch=pb)
        if g.graph_steps:
            res.graph_tokens_equal_eager = bool(torch.equal(g.tokens, eager.tokens))
            res.graph_sequences_equal_fraction = float((g.tokens == eager.tokens).all(1).float().mean())
        del g
    del eager, ids
    res.warmup_s = time.perf_counter() - t
    _free(dev)
    # the timed generate
    r = None
    while r is None:
        ids = torch.randint(0, config.vocab_size, (batch, prompt_len), device=dev, generator=gen)
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        try:
            r = model.generate(ids, n_new, graphs=graphs if dev.type == "cuda" else "off",
                               prefill_batch=min(pb, batch))
        except Exception as exc:
            if not is_oom(exc) or res.oom_retries >= oom_retries or batch <= batch_multiple:
                raise
        if r is None:  # out of memory (freed here, outside the except block whose traceback holds the caches)
            ids = None
            _free(dev)
            res.oom_retries += 1
            new = max(batch_multiple, (batch * 7 // 8) // batch_multiple * batch_multiple)
            log.warning("generate at batch %d ran out of memory; trying %d", batch, new)
            batch = new
    res.batch = batch
    res.tokens_per_s, res.decode_tokens_per_s = r.tokens_per_s, r.decode_tokens_per_s
    res.prefill_s, res.decode_s, res.capture_s = r.prefill_s, r.decode_s, r.capture_s
    res.cache_bytes, res.decode_mode, res.graph_note, res.graph_steps = (r.cache_bytes, r.decode_mode, r.graph_note,
                                                                         r.graph_steps)
    if dev.type == "cuda":
        res.peak_bytes = int(torch.cuda.max_memory_allocated())
    del r, ids, model
    _free(dev)
    return res
