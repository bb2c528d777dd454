rm -rf .git; export RATBENCH_GIT_REV=$1
B="--tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures"
R=$OUT/r
python run_bench.py --impl rat/triton,rat/gluon --mode train,prefill --seq-len 4k,32k,128k --head-dim 128 --chunk-size 16 --budget 2 $B --out $R/op > $R.op.log 2>&1 || echo "op rc $?"
python run_bench.py --impl rat/triton,rat/gluon --mode train,prefill --seq-len 4k,32k,128k --head-dim 64 --chunk-size 16 --budget 1 $B --out $R/shapes/d64 > $R.d64.log 2>&1 || echo "d64 rc $?"
python run_bench.py --impl rat/triton,rat/gluon --mode train,prefill --seq-len 4k,32k,128k --head-dim 128 --chunk-size 64 --budget 1 $B --out $R/shapes/l64 > $R.l64.log 2>&1 || echo "l64 rc $?"
python run_bench.py --preset check-triton --impl rat/gluon --mode train,prefill --device cuda --out $R/check --no-figures --no-progress > $R.check.log 2>&1 || echo "check rc $?"
python run_bench.py profile --impl rat/triton,rat/gluon --mode train,prefill --seq-len 4k,32k,128k --tokens 128k --heads 16 --head-dim 128 --chunk-size 16 --dtype bf16 --device cuda --no-progress --out $R/profile > $R.profile.log 2>&1 || echo "profile rc $?"
tar czf $OUT/r.tgz -C $OUT r r.op.log r.d64.log r.l64.log r.check.log r.profile.log 2>/dev/null || tar czf $OUT/r.tgz -C $OUT r
python - <<'PY'
import json, os, glob, collections
R = os.environ["OUT"] + "/r"
for name in ("op", "shapes/d64", "shapes/l64", "check"):
    rows = [json.loads(l) for l in open(f"{R}/{name}/results.jsonl")] if os.path.exists(f"{R}/{name}/results.jsonl") else []
    st = collections.Counter((r["impl"], r["status"], r.get("accuracy")) for r in rows)
    print(name, dict(st))
    if name != "check":
        t = collections.defaultdict(dict)
        for r in rows:
            t[(r["mode"], r["head_dim"], r["chunk_size"])][(r["impl"], r["seq_len"])] = r["ms_median"]
        for k, v in t.items():
            print(" ", k, " | ".join(f"{T//1024}k {v.get(('rat/gluon',T)) and round(v[('rat/gluon',T)],3)} vs {v.get(('rat/triton',T)) and round(v[('rat/triton',T)],3)}" for T in (4096, 32768, 131072)))
for l in open(f"{R}/profile/profile.jsonl"):
    r = json.loads(l)
    d = r.get("details") or {}
    print("profile", r["impl"], r["mode"], r["seq_len"], round(r["ms_median"] or 0, 3), [(s["stage"], round(s["ms"], 3)) for s in d.get("stages", [])])
PY
