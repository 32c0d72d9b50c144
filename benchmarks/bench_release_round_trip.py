"""An lst-350m-shaped release through a real Hub-protocol server: export, serve, load by repo id; time and memory.

    python benchmarks/bench_release_round_trip.py [--preset lst-350m] [--max_shard_size 500MB]

Random weights (no LST weights are published): a release of the preset's shape is exported (sharded
safetensors), committed into olah (tests/local_hub.py, which needs .venv-olah from scripts/setup_env.sh),
and loaded with `AutoModelForCausalLM.from_pretrained("org/lst-350m", trust_remote_code=True)` in a process
that cannot import this package: first through the server (download + load), then offline from the cache
with the server stopped. Prints wall time and peak resident memory of each load, and the bytes moved.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from lst_speech.model_cards.release import export_release  # noqa: E402
from lst_speech.modeling_lst import LSTConfig, LSTForCausalLM  # noqa: E402
from lst_speech.tokenization import SpeechUnitTextTokenizer  # noqa: E402
from lst_speech.tokenization.corpora.sample_text import kjv_verses  # noqa: E402
from lst_speech.training.checkpoints import save_pretrained_atomically  # noqa: E402

from local_hub import local_hub  # noqa: E402  (test support: the olah server)
from test_remote_code import BLOCK_PROJECT  # noqa: E402

LOAD = BLOCK_PROJECT + textwrap.dedent("""
    import json, resource, time
    started = time.perf_counter()
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained("org/lst-350m", trust_remote_code=True)
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
                      "parameters": sum(p.numel() for p in model.parameters())}))
    """)


def load(root: Path, **env) -> dict:
    environment = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    environment.update(HF_HOME=str(root / "hf-home"), PYTHONPATH="", **env)
    result = subprocess.run([sys.executable, "-c", LOAD], capture_output=True, text=True, cwd=root, env=environment)
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-3000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="lst-350m")
    parser.add_argument("--max_shard_size", default="500MB")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        tokenizer = SpeechUnitTextTokenizer.train(list(kjv_verses(20000)), vocab_size=8000, num_units=500)
        torch.manual_seed(0)
        model = LSTForCausalLM(LSTConfig.from_tokenizer(tokenizer, preset=args.preset))
        started = time.perf_counter()
        save_pretrained_atomically(model, tokenizer, root / "model", with_code=True, owner="bench")
        release = export_release(root / "model", root / "release", repo_id="org/lst-350m",
                                 max_shard_size=args.max_shard_size)
        export_seconds = time.perf_counter() - started
        del model
        size = sum(p.stat().st_size for p in release.glob("*.safetensors"))
        shards = len(list(release.glob("*.safetensors")))
        with local_hub(root / "hub", startup_seconds=120) as hub:
            started = time.perf_counter()
            hub.publish("model", "org/lst-350m", release)
            publish_seconds = time.perf_counter() - started
            online = load(root, HF_ENDPOINT=hub.endpoint)
        offline = load(root, HF_ENDPOINT=hub.endpoint, HF_HUB_OFFLINE="1")
    print(f"{args.preset}: {online['parameters'] / 1e6:.0f}M parameters, {size / 2**30:.2f} GiB in {shards} shards")
    print(f"| step | seconds | peak RSS (GiB) |\n|---|---|---|\n| save + export | {export_seconds:.1f} | |")
    print(f"| commit into the server's git repo | {publish_seconds:.1f} | |")
    print(f"| load by repo id through the server (download + load) | {online['seconds']:.1f} | "
          f"{online['peak_rss_gb']:.2f} |")
    print(f"| load by repo id offline from the cache | {offline['seconds']:.1f} | {offline['peak_rss_gb']:.2f} |")


if __name__ == "__main__":
    main()
