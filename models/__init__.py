"""Layer- and model-level modules for the paper's layer and model benchmarks (docs/rat-spec.md, "The RAT layer").

    from ratbench.models import RATLayer, LMConfig, LanguageModel
    layer = RATLayer(2048, 16, 128, "rat/reference", chunk_size=16)
    model = LanguageModel(LMConfig(mixer="rat-swa", impls={"rat": "rat/reference"}))
"""
from ratbench.models.cases import LayerCallable, LayerCase, graph_callable, layer_callable
from ratbench.models.checks import LayerCheck, check_layer
from ratbench.models.layers import (
    AUTHORS_HYBRID_WINDOW,
    DEFAULT_WINDOW,
    MIXER_KINDS,
    AttentionLayer,
    FeedForward,
    LayerCache,
    LinearAttentionLayer,
    MixerLayer,
    RATLayer,
    RNNLayer,
    SWALayer,
    build_mixer,
)
from ratbench.models.lm import (
    GenerateResult,
    LanguageModel,
    LMConfig,
    MaxBatch,
    find_max_batch,
    max_generate_batch,
    memory_probe,
)
from ratbench.models.norm import RMSNorm
from ratbench.models.throughput import Generation, measure_generation

__all__ = [
    "AUTHORS_HYBRID_WINDOW",
    "DEFAULT_WINDOW",
    "MIXER_KINDS",
    "AttentionLayer",
    "FeedForward",
    "GenerateResult",
    "Generation",
    "LMConfig",
    "LanguageModel",
    "LayerCache",
    "LayerCallable",
    "LayerCase",
    "LayerCheck",
    "LinearAttentionLayer",
    "MaxBatch",
    "MixerLayer",
    "RATLayer",
    "RMSNorm",
    "RNNLayer",
    "SWALayer",
    "build_mixer",
    "check_layer",
    "find_max_batch",
    "graph_callable",
    "layer_callable",
    "max_generate_batch",
    "measure_generation",
    "memory_probe",
]
