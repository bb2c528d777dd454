"""Sweep grammar, presets and expansion of a sweep into cases.

Grammar (CLI and presets alike):
    sizes      "4096", "4k" (= 4096), "1m" (= 1048576), lists "4k,16k,128k", doubling ranges "4k..128k"
    impls      comma-separated names or globs: "rat/*,full/sdpa-*"
    modes      "train,prefill,decode"
    dtypes     "bf16" | "fp16" | "fp32" | "fp64" (or the torch names)
    decay      "no,yes" (linear attention without / with a per-head decay)

A Case is one measurement: frozen, hashable, with a stable ``key`` used by the results file (resume)
and later by the regression gate and the multi-GPU sharding.
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

MODES = ("train", "prefill", "decode")
#: op = the attention op alone (q, k, v[, f | decay] in, output out); layer = one whole mixer layer
#: (norm, projections, op, gates, out_proj, residual; bench.levels); model = the paper's LM generating tokens
LEVELS = ("op", "layer", "model")

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*$")
_DTYPES = {
    "bf16": "bfloat16", "bfloat16": "bfloat16",
    "fp16": "float16", "float16": "float16", "half": "float16",
    "fp32": "float32", "float32": "float32", "float": "float32",
    "fp64": "float64", "float64": "float64", "double": "float64",
}
_SHORT_DTYPE = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32", "float64": "fp64"}


class SweepError(ValueError):
    """A sweep argument that does not parse or makes no cases."""


# ----- grammar ------------------------------------------------------------------------------------
def parse_size(text: str | int) -> int:
    """'4096' -> 4096, '4k' -> 4096, '1m' -> 1048576 (binary suffixes, as sequence lengths are)."""
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    else:
        m = _SIZE.match(str(text))
        if not m:
            raise SweepError(f"cannot read {text!r} as a size: use an integer with an optional k or m suffix, e.g. 4k")
        number, suffix = m.groups()
        mult = {"": 1, "k": 1024, "m": 1024 * 1024}[suffix.lower()]
        exact = float(number) * mult
        if exact != int(exact):
            raise SweepError(f"{text!r} is not a whole number")
        value = int(exact)
    if value < 1:
        raise SweepError(f"sizes must be >= 1, got {text!r}")
    return value


def parse_sizes(text: str | int | list) -> list[int]:
    """'4k,16k' -> [4096, 16384]; '4k..32k' -> [4096, 8192, 16384, 32768] (doubling); duplicates dropped."""
    if isinstance(text, list):
        items: list = text
    elif isinstance(text, int):
        items = [text]
    else:
        items = [p for p in str(text).split(",") if p.strip()]
    if not items:
        raise SweepError(f"empty size list {text!r}")
    out: list[int] = []
    for item in items:
        if isinstance(item, str) and ".." in item:
            lo_s, hi_s = item.split("..", 1)
            lo, hi = parse_size(lo_s), parse_size(hi_s)
            if hi < lo:
                raise SweepError(f"range {item!r} runs backwards")
            x = lo
            while x <= hi:
                out.append(x)
                x *= 2
        else:
            out.append(parse_size(item))
    return list(dict.fromkeys(out))


def parse_modes(text: str | list[str]) -> list[str]:
    items = text if isinstance(text, list) else [m.strip() for m in text.split(",") if m.strip()]
    bad = [m for m in items if m not in MODES]
    if bad or not items:
        raise SweepError(f"unknown mode(s) {bad or text!r}; modes are {', '.join(MODES)}")
    return list(dict.fromkeys(items))


def parse_dtype(text: str) -> str:
    """'bf16' -> 'bfloat16' (the torch name, which is what rows store)."""
    try:
        return _DTYPES[str(text).strip().lower().removeprefix("torch.")]
    except KeyError:
        raise SweepError(f"unknown dtype {text!r}; use one of bf16, fp16, fp32, fp64") from None


def parse_bools(text: str | list[bool]) -> list[bool]:
    if isinstance(text, list):
        return text
    table = {"no": False, "off": False, "false": False, "0": False, "yes": True, "on": True, "true": True, "1": True}
    out = []
    for p in (x.strip().lower() for x in str(text).split(",") if x.strip()):
        if p not in table:
            raise SweepError(f"cannot read {p!r} as yes/no")
        out.append(table[p])
    return list(dict.fromkeys(out))


def parse_names(text: str | list[str]) -> list[str]:
    """Comma-separated names or globs, e.g. 'rat/*,full/sdpa-*'."""
    if isinstance(text, list):
        return list(text)
    return [x.strip() for x in text.split(",") if x.strip()]


#: how each SweepSpec field is read from the text a user writes (run_bench.py's flags, bench.api)
FIELD_PARSERS: dict[str, Callable[[Any], Any]] = {
    "impls": parse_names, "modes": parse_modes, "seq_lens": parse_sizes, "chunk_sizes": parse_sizes,
    "windows": parse_sizes, "decays": parse_bools, "batches": parse_sizes, "tokens": parse_size,
    "decode_batches": parse_sizes, "heads": parse_sizes, "head_dims": parse_sizes, "dtype": parse_dtype,
    "levels": parse_names, "kinds": parse_names, "layer_chunk_sizes": parse_sizes, "compile": parse_bools,
    "decode_fill": str, "models": parse_names, "prompt_len": parse_size, "new_tokens": parse_size,
    "model_batch": parse_size, "max_batch_limit": parse_size, "n_layers": int,
}


def torch_dtype(name: str) -> torch.dtype:
    return getattr(torch, parse_dtype(name))


def short_dtype(name: str) -> str:
    return _SHORT_DTYPE.get(name, name)


def format_size(n: int) -> str:
    """4096 -> '4k', 131072 -> '128k', 1000 -> '1000'."""
    for div, suf in ((1024 * 1024, "m"), (1024, "k")):
        if n >= div and n % div == 0:
            return f"{n // div}{suf}"
    return str(n)


# ----- cases --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """One measurement. Family parameters that do not apply are None (chunk_size for rat, window for
    swa, decay for linear); parameters of other families (registered with impls.register_family) are
    ``family_params``, sorted (name, value) pairs."""

    impl: str
    mode: str
    batch: int
    seq_len: int
    heads: int
    head_dim: int
    dtype: str
    device: str
    chunk_size: int | None = None
    window: int | None = None
    decay: bool | None = None
    level: str = "op"
    #: layer / model level (bench.levels): the mixer kind (attention, swa, linear, rat, rnn; model: a mixer
    #: like "rat-swa"), torch.compile of the layer, and the model's new tokens and depth
    kind: str | None = None
    compiled: bool | None = None
    new_tokens: int | None = None
    n_layers: int | None = None
    family_params: tuple[tuple[str, Any], ...] = ()

    @property
    def family(self) -> str:
        return self.impl.split("/", 1)[0]

    @property
    def key(self) -> str:
        """Stable identity across runs and machines of the same device type (used by resume/compare)."""
        parts = [
            self.impl, self.mode, self.level, f"B{self.batch}", f"T{self.seq_len}", f"H{self.heads}",
            f"D{self.head_dim}", f"L{self.chunk_size if self.chunk_size is not None else '-'}",
            f"W{self.window if self.window is not None else '-'}",
            f"decay{'-' if self.decay is None else int(self.decay)}", self.dtype, self.device,
        ]
        if self.level != "op":  # op keys stay as they were (resume of older results files)
            parts += [f"K{self.kind}", f"compiled{int(bool(self.compiled))}", f"N{self.new_tokens or '-'}",
                      f"n{self.n_layers or '-'}"]
        if self.family_params:  # families registered from outside: name=value
            parts.append(format_family_params(self.family_params))
        return "|".join(parts)

    @property
    def params(self) -> dict[str, object]:
        """Family parameters (for forward/init_state and unsupported_reason)."""
        p: dict[str, object] = {}
        if self.chunk_size is not None:
            p["chunk_size"] = self.chunk_size
        if self.window is not None:
            p["window"] = self.window
        if self.decay is not None:
            p["decay"] = self.decay
        p.update(self.family_params)
        return p

    @property
    def label(self) -> str:
        """Series name in tables and plots: the implementation and its family parameters."""
        extra = []
        if self.chunk_size is not None:
            extra.append(f"L={self.chunk_size}")
        if self.window is not None:
            extra.append(f"W={self.window}")
        if self.decay:
            extra.append("decay")
        if self.family_params:
            extra.append(format_family_params(self.family_params, ", "))
        if self.level != "op":
            return _level_label(self, extra)
        return self.impl + (f" ({', '.join(extra)})" if extra else "")

    def short(self) -> str:
        """Compact description for progress bars and logs."""
        s = f"{self.label} {self.mode} B={self.batch} T={format_size(self.seq_len)}"
        return s

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Case:
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        fp = kw.get("family_params")
        if isinstance(fp, str):  # a row's "name=value,..."
            kw["family_params"] = parse_family_params(fp)
        elif fp is not None:  # JSON's [[name, value], ...]
            kw["family_params"] = tuple(sorted((str(k), v) for k, v in fp))
        else:
            kw.pop("family_params", None)
        return cls(**kw)


def format_family_params(pairs: tuple[tuple[str, Any], ...], sep: str = ",") -> str:
    """(('sharpness', 2),) -> 'sharpness=2' (values as JSON: 2, 0.5, true), as keys, labels and rows show them."""
    return sep.join(f"{k}={json.dumps(v)}" for k, v in pairs)


def parse_family_params(text: str) -> tuple[tuple[str, Any], ...]:
    """'sharpness=2,b=true' -> (('b', True), ('sharpness', 2)): the inverse of format_family_params."""
    out = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, _, value = part.partition("=")
        out.append((name.strip(), json.loads(value)))
    return tuple(sorted(out))


def _level_label(case: Case, extra: list[str]) -> str:
    """Series name of a layer or model case: 'layer rat rat/triton (L=16)', 'layer rnn rat/triton (L=T)',
    'layer attention full/sdpa-flash (compiled)', 'model rat-swa rat/triton+swa/flex (L=16, W=1024)'."""
    if case.kind == "rnn":
        extra = ["L=T"] + [e for e in extra if not e.startswith("L=")]
    if case.compiled:
        extra = extra + ["compiled"]
    return f"{case.level} {case.kind} {case.impl}" + (f" ({', '.join(extra)})" if extra else "")


def case_fields(params: dict[str, Any]) -> dict[str, Any]:
    """Case keyword arguments for family parameter values: chunk_size, window and decay are Case fields,
    any other parameter goes into ``family_params`` (sorted, so the key does not depend on the order)."""
    from ratbench.impls.spec import CASE_FIELDS

    kw = {k: v for k, v in params.items() if k in CASE_FIELDS}
    extra = tuple(sorted((k, v) for k, v in params.items() if k not in CASE_FIELDS))
    if extra:
        kw["family_params"] = extra
    return kw


def family_grid(family: str, spec: SweepSpec, *, layer: bool = False) -> list[dict[str, Any]]:
    """Every combination of the family's parameter values in ``spec`` (impls.spec, FamilyParam.values),
    as Case keyword arguments; [{}] for a family without parameters."""
    from ratbench import impls

    params = impls.family(family).params
    return [case_fields(dict(zip((p.name for p in params), combo, strict=True)))
            for combo in itertools.product(*(p.values(spec, layer=layer) for p in params))]


# ----- sweep spec ---------------------------------------------------------------------------------
@dataclass
class SweepSpec:
    """What to measure. ``batches`` wins over ``tokens`` (tokens per batch: B = tokens // T)."""

    impls: list[str] = field(default_factory=lambda: ["*"])
    modes: list[str] = field(default_factory=lambda: list(MODES))
    seq_lens: list[int] = field(default_factory=lambda: [256, 512])
    chunk_sizes: list[int] = field(default_factory=lambda: [16])
    windows: list[int] = field(default_factory=lambda: [128])
    decays: list[bool] = field(default_factory=lambda: [False])
    #: values of family parameters that have no list of their own above (families registered from outside
    #: the package, impls.register_family): name -> values; a parameter missing here takes its declared default
    family_params: dict[str, list] = field(default_factory=dict)
    heads: list[int] = field(default_factory=lambda: [4])
    head_dims: list[int] = field(default_factory=lambda: [64])
    batches: list[int] | None = None
    tokens: int | None = 2048
    decode_batches: list[int] | None = None
    dtype: str = "float32"
    device: str = "cpu"
    #: leave family references out when the impl patterns are globs (they are oracles, slow on purpose)
    skip_references: bool = False
    # timing policy
    repeats: int = 30
    min_repeats: int = 3
    warmup: int = 1
    case_budget_s: float = 0.5
    #: CPU: stop timing a case once its median's 95% interval is narrower than this fraction of the median
    #: (adaptive repeats, bench.timing); None: the calls that the warm-up says fit in the budget
    target_ci_rel: float | None = None
    #: CPU: torch's intra-op threads (None or 0: torch's choice, usually one per core)
    threads: int | None = None
    #: a single call slower than this stops the series (larger seq_len of the same impl/mode are skipped)
    max_call_s: float = 10.0
    flush_l2: bool = True
    cuda_graphs: bool = True
    check_accuracy: bool = True
    #: "tolerance" (bench.accuracy, small shape) or "fa-rule" (bench.fa_rule, the case's own shape)
    accuracy_rule: str = "tolerance"
    seed: int = 0
    #: no case starts after this many seconds of a session; the rest wait for ``resume``
    time_limit_s: float | None = None
    #: levels to run (LEVELS); layer and model cases are expanded by bench.levels from the fields below
    levels: list[str] = field(default_factory=lambda: ["op"])
    #: layer level: mixer kinds (attention, swa, linear, rat, rnn), RAT chunk sizes (None: chunk_sizes),
    #: torch.compile of the layer for train / prefill (no / yes / both)
    kinds: list[str] = field(default_factory=lambda: ["attention", "rat", "rnn"])
    layer_chunk_sizes: list[int] | None = None
    compile: list[bool] = field(default_factory=lambda: [False])
    #: layer decode: "prefill" fills the cache with real prefills of T - 1 random tokens, "none" only sets
    #: the position (same kernels and bytes, faster to set up)
    decode_fill: str = "prefill"
    #: model level: mixers (models.LMConfig.mixer), prompt and generated tokens, depth, vocabulary, and the
    #: batch: None searches the largest that fits (models.max_generate_batch) up to max_batch_limit
    models: list[str] = field(default_factory=lambda: ["attention", "rat", "attention-swa", "rat-swa"])
    prompt_len: int = 3072
    new_tokens: int = 1024
    n_layers: int = 24
    vocab_size: int = 32000
    model_batch: int | None = None
    max_batch_limit: int = 8192

    def batch_for(self, mode: str, seq_len: int) -> list[int]:
        if mode == "decode" and self.decode_batches:
            return list(self.decode_batches)
        if self.batches:
            return list(self.batches)
        if self.tokens:
            return [max(1, self.tokens // seq_len)]
        return [1]

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> SweepSpec:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def resolve_impls(patterns: list[str], skip_references: bool = False) -> list[str]:
    """Registered names matching the patterns. A pattern matching nothing is an error; references are
    dropped only from glob matches (naming one explicitly keeps it)."""
    from ratbench import impls

    out: list[str] = []
    for pat in patterns:
        hits = impls.match(pat)
        if skip_references and any(ch in pat for ch in "*?["):
            hits = [h for h in hits if not h.endswith("/reference")]
        out.extend(h for h in hits if h not in out)
    return out


def expand(spec: SweepSpec) -> list[Case]:
    """Every case of a sweep: op-level cases (expand_op) when "op" is among ``spec.levels``, then layer- and
    model-level cases (bench.levels.expand), in the order the levels are listed."""
    bad = [lv for lv in spec.levels if lv not in LEVELS]
    if bad or not spec.levels:
        raise SweepError(f"unknown level(s) {bad or spec.levels!r}; levels are {', '.join(LEVELS)}")
    by_level = {"op": expand_op, "layer": expand_layer, "model": expand_model}
    out: list[Case] = []
    for lv in dict.fromkeys(spec.levels):
        out += by_level[lv](spec)
    if not out:
        raise SweepError("the sweep makes no cases")
    return out


def expand_op(spec: SweepSpec) -> list[Case]:
    """Every op-level case of a sweep, in run order: sequence length (shortest first), then mode,
    implementation, heads, head_dim, family params, batch.

    Shorter sequences run first, so a series that is too slow at one length can skip its longer
    ones, and a run stopped by its time limit has every implementation up to some length."""
    names = resolve_impls(spec.impls, spec.skip_references)
    dtype = parse_dtype(spec.dtype)
    cases: list[Case] = []
    for name in names:
        fam_params = family_grid(name.split("/", 1)[0], spec)
        for mode, H, D, p, T in itertools.product(spec.modes, spec.heads, spec.head_dims, fam_params, spec.seq_lens):
            for B in spec.batch_for(mode, T):
                cases.append(Case(impl=name, mode=mode, batch=B, seq_len=T, heads=H, head_dim=D, dtype=dtype,
                                  device=spec.device, **p))
    order = {T: i for i, T in enumerate(sorted(spec.seq_lens))}
    mode_order = {m: i for i, m in enumerate(spec.modes)}
    cases.sort(key=lambda c: (order[c.seq_len], mode_order[c.mode]))  # stable: the loops' order within
    seen: set[str] = set()
    unique = []
    for c in cases:
        if c.key not in seen:
            seen.add(c.key)
            unique.append(c)
    if not unique:
        raise SweepError("the sweep makes no cases")
    return unique


# ----- layer and model levels (run by bench.levels) -------------------------------------------------
#: mixer kind -> the family of implementation it takes (as models.layers.KIND_FAMILY)
KIND_FAMILY = {"attention": "full", "swa": "swa", "linear": "linear", "rat": "rat", "rnn": "rat"}
#: kinds whose family parameters the kind itself fixes (rnn: RAT with one chunk of T tokens)
KIND_FIXED_PARAMS = ("rnn",)
#: fastest first: the implementation a hybrid model uses for each family (the first available one)
PREFERENCE = {
    "full": ("full/fa4", "full/sdpa-cudnn", "full/flash-attn", "full/sdpa-flash", "full/sdpa-efficient", "full/flex",
             "full/sdpa-math", "full/reference"),
    "swa": ("swa/fa4", "swa/flash-attn", "swa/flex", "swa/reference"),
    # rat/gluon (sm_90 only) first since it beat rat/triton at every T on the H200, train and prefill, and passed the
    # FlashAttention-rule checks (reports/h200-rat-gluon-2026-12-04); elsewhere it is unavailable and rat/triton runs
    "rat": ("rat/gluon", "rat/triton", "rat/flex", "rat/reference"),
    "linear": ("linear/triton", "linear/fla", "linear/reference"),
}


def mixer_kinds(mixer: str) -> list[str]:
    """'rat-swa' -> ['rat', 'swa'], 'attention' -> ['attention'] (as models.LMConfig reads them)."""
    parts = mixer.split("-")
    if len(parts) > 2 or any(p not in KIND_FAMILY for p in parts):
        raise SweepError(f"model mixer must be one of {', '.join(KIND_FAMILY)} or a hybrid '<even>-<odd>' of two of "
                         f"them (e.g. rat-swa), got {mixer!r}")
    return parts


def _available(name: str, device: str) -> bool:
    from ratbench import impls

    try:
        cls = impls.load_class(name)
        return cls.unavailable_reason(device) is None and cls.supports_decode
    except Exception:  # noqa: BLE001 - not available: the run says why
        return False


def best_impl(family: str, names: list[str], device: str) -> str | None:
    """The first of ``names`` of the family, in PREFERENCE order, that is available on ``device`` with a decode
    path, else the first in that order (its row then says why it cannot run), else None."""
    pref = PREFERENCE.get(family, ())
    fam = sorted((n for n in names if n.split("/", 1)[0] == family),
                 key=lambda n: pref.index(n) if n in pref else len(pref))
    return next((n for n in fam if _available(n, device)), fam[0] if fam else None)


def expand_layer(spec: SweepSpec) -> list[Case]:
    """Layer-level cases (bench.levels): per kind, every implementation of its family, mode, compile choice,
    heads, head_dim, family parameters (layer_chunk_sizes for RAT when given), seq_len and batch; shortest
    seq_len first, then mode."""
    names = resolve_impls(spec.impls, spec.skip_references)
    dtype = parse_dtype(spec.dtype)
    cases: list[Case] = []
    for kind in spec.kinds:
        if kind not in KIND_FAMILY:
            raise SweepError(f"unknown layer kind {kind!r}; kinds are {', '.join(KIND_FAMILY)}")
        fam = KIND_FAMILY[kind]
        params = [{}] if kind in KIND_FIXED_PARAMS else family_grid(fam, spec, layer=True)
        for name, mode in itertools.product([n for n in names if n.split("/", 1)[0] == fam], spec.modes):
            compiles = dict.fromkeys(spec.compile) if mode != "decode" else [False]
            for compiled, H, D, p, T in itertools.product(compiles, spec.heads, spec.head_dims, params, spec.seq_lens):
                for B in spec.batch_for(mode, T):
                    cases.append(Case(impl=name, mode=mode, batch=B, seq_len=T, heads=H, head_dim=D, dtype=dtype,
                                      device=spec.device, level="layer", kind=kind, compiled=bool(compiled), **p))
    order = {T: i for i, T in enumerate(sorted(spec.seq_lens))}
    mode_order = {m: i for i, m in enumerate(spec.modes)}
    cases.sort(key=lambda c: (order[c.seq_len], mode_order[c.mode]))
    return cases


def expand_model(spec: SweepSpec) -> list[Case]:
    """Model-level cases (bench.levels): per mixer, every matched implementation of a one-family mixer, or the
    best available implementation of each family of a hybrid; the first value of each family parameter."""
    import logging

    names = resolve_impls(spec.impls, spec.skip_references)
    dtype = parse_dtype(spec.dtype)
    cases: list[Case] = []
    for mixer in spec.models:
        kinds = mixer_kinds(mixer)
        fams = list(dict.fromkeys(KIND_FAMILY[k] for k in kinds))
        if len(fams) == 1:  # every matched implementation of the one family
            choices = [[n] for n in names if n.split("/", 1)[0] == fams[0]]
        else:
            picks = [best_impl(f, names, spec.device) for f in fams]
            choices = [picks] if all(picks) else []  # type: ignore[list-item]
        if not choices:
            logging.getLogger("ratbench.bench.levels").warning("model %s: no implementation of %s matches --impl %s", mixer,
                                                      "/".join(fams), ",".join(spec.impls))
        p: dict[str, Any] = {}
        for kind in dict.fromkeys(k for k in kinds if k not in KIND_FIXED_PARAMS):
            p.update(family_grid(KIND_FAMILY[kind], spec)[0])
        for impl_list, compiled in itertools.product(choices, dict.fromkeys(spec.compile)):
            cases.append(Case(impl="+".join(impl_list), mode="generate", batch=spec.model_batch or 0,
                              seq_len=spec.prompt_len, heads=spec.heads[0], head_dim=spec.head_dims[0], dtype=dtype,
                              device=spec.device, level="model", kind=mixer, compiled=bool(compiled),
                              new_tokens=spec.new_tokens, n_layers=spec.n_layers, **p))
    return cases


def series_key(case: Case) -> tuple:
    """Cases that differ only in seq_len (and batch, when tokens per batch is fixed) form a series."""
    return (case.impl, case.mode, case.heads, case.head_dim, case.chunk_size, case.window, case.decay,
            case.dtype, case.device, case.level) + ((case.family_params,) if case.family_params else ())
