"""Every built-in family and implementation, one line each. Adding an implementation is one line here; a
family is its declaration (impls/<family>/spec.py, impls/spec.py) and one ``register_family`` line."""
from ratbench.impls.full.spec import SPEC as FULL
from ratbench.impls.linear.spec import SPEC as LINEAR
from ratbench.impls.rat.spec import SPEC as RAT
from ratbench.impls.registry import register
from ratbench.impls.spec import register_family
from ratbench.impls.swa.spec import SPEC as SWA

for _spec in (FULL, SWA, LINEAR, RAT):
    register_family(_spec)

# references: plain PyTorch oracles (CPU and GPU, differentiable)
register("full/reference", "ratbench.impls.full.reference:FullReference")
register("swa/reference", "ratbench.impls.swa.reference:SWAReference")
register("linear/reference", "ratbench.impls.linear.reference:LinearReference")
register("rat/reference", "ratbench.impls.rat.reference:RATReference")
register("linear/triton", "ratbench.impls.linear.triton:LinearTriton")
register("rat/triton", "ratbench.impls.rat.triton:RATTriton")
register("rat/gluon", "ratbench.impls.rat.gluon:RATGluon")
register("full/triton", "ratbench.impls.full.triton:FullTriton")
register("swa/triton", "ratbench.impls.swa.triton:SWATriton")

# peers (impls/<family>/<peer>.py): the best attention users could run instead
register("full/sdpa-flash", "ratbench.impls.full.sdpa:SDPAFlash")
register("full/sdpa-cudnn", "ratbench.impls.full.sdpa:SDPACuDNN")
register("full/sdpa-efficient", "ratbench.impls.full.sdpa:SDPAEfficient")
register("full/sdpa-math", "ratbench.impls.full.sdpa:SDPAMath")
register("full/flex", "ratbench.impls.full.flex:FullFlex")
register("full/flash-attn", "ratbench.impls.full.flash_attn:FullFlashAttn")
register("full/fa4", "ratbench.impls.full.fa4:FullFA4")
register("swa/flex", "ratbench.impls.swa.flex:SWAFlex")
register("swa/flash-attn", "ratbench.impls.swa.flash_attn:SWAFlashAttn")
register("swa/fa4", "ratbench.impls.swa.fa4:SWAFA4")
register("linear/fla", "ratbench.impls.linear.fla:LinearFLA")
register("rat/flex", "ratbench.impls.rat.flex:RATFlex")
