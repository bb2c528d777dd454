"""Every built-in implementation, one line each. Adding an implementation is one line here."""
from impls.registry import register

# references: plain PyTorch oracles (CPU and GPU, differentiable)
register("full/reference", "impls.full.reference:FullReference")
register("swa/reference", "impls.swa.reference:SWAReference")
register("linear/reference", "impls.linear.reference:LinearReference")
register("rat/reference", "impls.rat.reference:RATReference")
register("linear/triton", "impls.linear.triton:LinearTriton")
