"""Named sweeps (``--preset``): the SweepSpec each preset gives on the CPU and on a GPU.

bench.sweep holds the grammar and the expansion; a preset only fills a SweepSpec."""
from __future__ import annotations

from ratbench.bench.sweep import SweepError, SweepSpec, parse_sizes

PRESETS = ("smoke", "default", "paper", "check-triton", "rat-triton", "full-swa-triton", "linear-triton", "peers",
           "layers")
#: CPU presets: one intra-op thread (on a small machine shared with anything, two threads spent most of a
#: decode step waiting for each other: 24-48 ms for a 0.2 ms step; bench/README.md, "Noise"), and adaptive
#: repeats until the median is known to +-2.5% (95% interval narrower than 5% of it) or the budget ends
CPU_THREADS = 1
CPU_TARGET_CI_REL = 0.05
#: the CPU default: the references and SDPA (FlexAttention runs eagerly on the CPU, its unfused path, which
#: says nothing about the fused kernel; Triton kernels need a GPU or TRITON_INTERPRET=1). --impl '*'
#: runs everything.
CPU_DEFAULT_IMPLS = ("*/reference", "full/sdpa-math")
#: the paper preset on a GPU: the paper's baseline (SDPA, FlashAttention-2 backend), the strongest full
#: attention we have (cuDNN SDPA, flash-attn, FA4), and every SWA, linear and RAT implementation.
#: Math/efficient SDPA and FlexAttention for full attention are left out (slow or redundant at these
#: lengths); name them with --impl to include them.
PAPER_IMPLS = ("full/sdpa-flash", "full/sdpa-cudnn", "full/flash-attn", "full/fa4", "swa/*", "linear/*", "rat/*")


def preset(name: str, device: str) -> SweepSpec:
    """Named sweeps. CPU presets use small shapes and float32; GPU presets use H=16, D=128, bf16.

    smoke    a few seconds: tiny shapes, every mode (CI and quick checks)
    default  CPU: references and SDPA, under 2 minutes on 2 cores; GPU: the paper preset's
             implementations at T = 4k, 16k, 64k with 128k tokens per batch (B = 128k / T), H 16, D 128,
             chunk size 16, decode at batch 64 and 512 (the anchors' batches)
    paper    the paper's Figure 3 (layer level: attention, RAT at chunk 16, 64, 128 and the RNN; train,
             prefill, and gen = decode at batch 512) and Table 1 (model level: the 1.3B model generating
             1024 tokens after a 3072-token prompt at the largest batch that fits, for attention, RAT,
             attention-SWA, RAT-SWA); ``--level op`` gives the same grid at op level:
             T = 4k..128k, 256k tokens per batch (B = 256k / T),
             chunk size 16, decode at batch 512, SWA window 1024; per-case time budgets, and a 540 s
             time limit so that one 10-minute GPU command always ends with its results written (any cases
             left over are finished by ``resume``; compile times of the compiled peers decide which)
    """
    if name not in PRESETS:
        raise SweepError(f"unknown preset {name!r}; presets are {', '.join(PRESETS)}")
    gpu = device == "cuda"
    if name in _KERNEL_PRESETS:
        return _KERNEL_PRESETS[name](gpu, device)
    if name == "smoke":
        return SweepSpec(
            impls=["*"] if gpu else list(CPU_DEFAULT_IMPLS), seq_lens=[64, 128], chunk_sizes=[16], windows=[32],
            heads=[2], head_dims=[32], tokens=256,
            dtype="bfloat16" if gpu else "float32", device=device, repeats=10, min_repeats=3, case_budget_s=0.1,
            skip_references=gpu, max_call_s=5.0, threads=None if gpu else CPU_THREADS,
            target_ci_rel=None if gpu else CPU_TARGET_CI_REL,
        )
    if name == "default":
        if gpu:
            return SweepSpec(
                impls=list(PAPER_IMPLS), seq_lens=[4096, 16384, 65536], chunk_sizes=[16], windows=[1024],
                heads=[16], head_dims=[128], tokens=131072, decode_batches=[64, 512], dtype="bfloat16",
                device=device, skip_references=True,
                repeats=50, min_repeats=5, warmup=2, case_budget_s=1.0, max_call_s=5.0, time_limit_s=540.0,
            )
        return SweepSpec(
            impls=list(CPU_DEFAULT_IMPLS), seq_lens=[256, 512, 1024], chunk_sizes=[16], windows=[128], heads=[4],
            head_dims=[64], tokens=2048, dtype="float32", device=device, repeats=200, min_repeats=3, warmup=1,
            case_budget_s=0.3, max_call_s=5.0, threads=CPU_THREADS, target_ci_rel=CPU_TARGET_CI_REL,
        )
    # paper
    if gpu:
        return SweepSpec(
            impls=list(PAPER_IMPLS), seq_lens=parse_sizes("4k..128k"), chunk_sizes=[16], windows=[1024], heads=[16],
            head_dims=[128], tokens=262144, decode_batches=[512], dtype="bfloat16", device=device,
            skip_references=True, repeats=30, min_repeats=3, warmup=1, case_budget_s=0.5, max_call_s=4.0,
            time_limit_s=540.0, levels=["layer", "model"], layer_chunk_sizes=[16, 64, 128],
        )
    # CPU: the same grid on tiny shapes (checks every code path; its numbers are not comparable to the paper's)
    return SweepSpec(
        impls=list(CPU_DEFAULT_IMPLS), seq_lens=[128, 256, 512], chunk_sizes=[16], windows=[64], heads=[2],
        head_dims=[32], tokens=1024,
        decode_batches=[8], dtype="float32", device=device, repeats=5, min_repeats=2, case_budget_s=0.2,
        max_call_s=5.0, levels=["layer", "model"], layer_chunk_sizes=[16, 64, 128], prompt_len=48, new_tokens=16,
        n_layers=2, max_batch_limit=4, threads=CPU_THREADS, target_ci_rel=CPU_TARGET_CI_REL,
    )



# What the per-kernel GPU scripts swept (scripts/gpu_*.py, folded into the harness). GPU: their shapes,
# bf16; CPU: tiny shapes in float32 (Triton kernels run under TRITON_INTERPRET=1 there).
#     check-triton     every Triton kernel (*/triton), train / prefill / decode, checked by the FlashAttention
#                      rule (accuracy_rule "fa-rule") at B = 1, H = 4, T 1000 / 2048 / 4096, D 64 / 128, RAT
#                      chunks 1 / 16 / 64, SWA windows 100 / 1024, linear with and without decay; --dtype fp16
#                      or fp32 for the other rules (timing there is incidental: few, short repeats)
#     rat-triton       rat/triton beside rat/flex: T 4k..128k, 128k tokens per batch, H 16, D 128, L 16,
#                      decode at batch 1 and 64
#     full-swa-triton  full/triton and swa/triton beside SDPA (flash, cuDNN) and Flex: same grid, window 1024
#     linear-triton    linear/triton beside linear/fla, with and without decay: T 4k, 16k, 128k
#     peers            every implementation that is not a reference: T 4k, 16k, 128k tokens per batch
#     layers           layer level (attention, SWA, linear, RAT, RNN kinds) at T 4k, 32k, 128k with 256k
#                      tokens per batch, and model level at batch 64, 3072 + 64 tokens
def _kernel_spec(gpu: bool, device: str, **kw: object) -> SweepSpec:
    base: dict[str, object] = {"heads": [16], "head_dims": [128], "tokens": 131072, "dtype": "bfloat16",
                               "device": device, "skip_references": True, "repeats": 50, "min_repeats": 5, "warmup": 2,
                               "case_budget_s": 1.0, "max_call_s": 5.0, "time_limit_s": 540.0}
    if not gpu:
        base.update(heads=[2], head_dims=[32], tokens=256, dtype="float32", repeats=5, min_repeats=2, warmup=1,
                    case_budget_s=0.1, threads=CPU_THREADS, time_limit_s=None)
    base.update(kw)
    return SweepSpec(**base)  # type: ignore[arg-type]


_KERNEL_PRESETS = {
    "check-triton": lambda gpu, dev: _kernel_spec(
        gpu, dev, impls=["*/triton"], accuracy_rule="fa-rule", batches=[1], tokens=None,
        seq_lens=[1000, 2048, 4096] if gpu else [64, 100], heads=[4] if gpu else [1],
        head_dims=[64, 128] if gpu else [64], chunk_sizes=[1, 16, 64] if gpu else [1, 16],
        windows=[100, 1024] if gpu else [7, 32], decays=[False, True], repeats=3, min_repeats=1, warmup=1,
        case_budget_s=0.05, max_call_s=30.0),
    "rat-triton": lambda gpu, dev: _kernel_spec(
        gpu, dev, impls=["rat/triton", "rat/flex"], seq_lens=parse_sizes("4k..128k") if gpu else [64, 128],
        chunk_sizes=[16], decode_batches=[1, 64] if gpu else [2]),
    "full-swa-triton": lambda gpu, dev: _kernel_spec(
        gpu, dev, impls=["full/triton", "full/sdpa-flash", "full/sdpa-cudnn", "swa/triton", "swa/flex"],
        seq_lens=parse_sizes("4k..128k") if gpu else [64, 128], windows=[1024] if gpu else [32],
        decode_batches=[1, 64] if gpu else [2]),
    "linear-triton": lambda gpu, dev: _kernel_spec(
        gpu, dev, impls=["linear/triton", "linear/fla"], seq_lens=[4096, 16384, 131072] if gpu else [64, 128],
        decays=[False, True], decode_batches=[1, 64] if gpu else [2]),
    "peers": lambda gpu, dev: _kernel_spec(
        gpu, dev, impls=["*"], seq_lens=[4096, 16384, 131072] if gpu else [64, 128], chunk_sizes=[16],
        windows=[1024] if gpu else [32], decays=[False, True], decode_batches=[64] if gpu else [2]),
    "layers": lambda gpu, dev: _kernel_spec(
        gpu, dev, impls=list(PAPER_IMPLS), levels=["layer", "model"],
        seq_lens=[4096, 32768, 131072] if gpu else [128, 256], tokens=262144 if gpu else 512,
        kinds=["attention", "swa", "linear", "rat", "rnn"], layer_chunk_sizes=[16], windows=[1024] if gpu else [32],
        decode_batches=[64, 512] if gpu else [4], model_batch=64 if gpu else 2, new_tokens=64 if gpu else 8,
        prompt_len=3072 if gpu else 24, **({} if gpu else {"n_layers": 2})),
}
