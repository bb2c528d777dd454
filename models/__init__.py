"""Layer- and model-level modules for the paper's layer and model benchmarks (rat.md, "The RAT layer").

    from models import RATLayer, LMConfig, LanguageModel
    layer = RATLayer(2048, 16, 128, "rat/reference", chunk_size=16)
    model = LanguageModel(LMConfig(mixer="rat-swa", impls={"rat": "rat/reference"}))
"""
from models.layers import (
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
from models.cases import LayerCallable, LayerCase, graph_callable, layer_callable
from models.lm import (
    GenerateResult,
    LanguageModel,
    LMConfig,
    MaxBatch,
    find_max_batch,
    max_generate_batch,
    memory_probe,
)
from models.norm import RMSNorm

__all__ = [
    "AUTHORS_HYBRID_WINDOW",
    "DEFAULT_WINDOW",
    "MIXER_KINDS",
    "AttentionLayer",
    "FeedForward",
    "GenerateResult",
    "LMConfig",
    "LanguageModel",
    "LayerCache",
    "LayerCallable",
    "LayerCase",
    "LinearAttentionLayer",
    "MaxBatch",
    "MixerLayer",
    "RATLayer",
    "RMSNorm",
    "RNNLayer",
    "SWALayer",
    "build_mixer",
    "find_max_batch",
    "graph_callable",
    "layer_callable",
    "max_generate_batch",
    "memory_probe",
]
