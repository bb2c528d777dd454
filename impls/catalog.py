"""Every built-in family and implementation, one line each. Adding an implementation is one line here; a
family is its declaration (impls/<family>/spec.py, impls/spec.py) and one ``register_family`` line."""
from impls.full.spec import SPEC as FULL
from impls.linear.spec import SPEC as LINEAR
from impls.rat.spec import SPEC as RAT
from impls.registry import register
from impls.spec import register_family
from impls.swa.spec import SPEC as SWA

for _spec in (FULL, SWA, LINEAR, RAT):
    register_family(_spec)

# references: plain PyTorch oracles (CPU and GPU, differentiable)
register("full/reference", "impls.full.reference:FullReference")
register("swa/reference", "impls.swa.reference:SWAReference")
register("linear/reference", "impls.linear.reference:LinearReference")
register("rat/reference", "impls.rat.reference:RATReference")
register("linear/triton", "impls.linear.triton:LinearTriton")
register("rat/triton", "impls.rat.triton:RATTriton")
register("rat/gluon", "impls.rat.gluon:RATGluon")
register("full/triton", "impls.full.triton:FullTriton")
register("swa/triton", "impls.swa.triton:SWATriton")

# peers (impls/<family>/<peer>.py): the best attention users could run instead
register("full/sdpa-flash", "impls.full.sdpa:SDPAFlash")
register("full/sdpa-cudnn", "impls.full.sdpa:SDPACuDNN")
register("full/sdpa-efficient", "impls.full.sdpa:SDPAEfficient")
register("full/sdpa-math", "impls.full.sdpa:SDPAMath")
register("full/flex", "impls.full.flex:FullFlex")
register("full/flash-attn", "impls.full.flash_attn:FullFlashAttn")
register("full/fa4", "impls.full.fa4:FullFA4")
register("swa/flex", "impls.swa.flex:SWAFlex")
register("swa/flash-attn", "impls.swa.flash_attn:SWAFlashAttn")
register("swa/fa4", "impls.swa.fa4:SWAFA4")
register("linear/fla", "impls.linear.fla:LinearFLA")
register("rat/flex", "impls.rat.flex:RATFlex")
