"""One rank of the FSDP test (run by tests/test_fsdp.py through torch.distributed.run, 2 CPU processes, gloo).

Accelerate 1.15 turns FSDP on only for accelerator devices (on CPU, `accelerate launch` with an FSDP config runs
DDP), so this worker shards the model as Accelerate's `fsdp2_prepare_model` does: Accelerate's own wrap policy
from the model's `_no_split_modules`, applied bottom up with torch's `fully_shard`, then the root. Each rank
trains on its half of a fixed batch; rank 0 also trains an unsharded copy on the whole batch. Both write their
losses, and what was wrapped, to OUTPUT_DIR/rank-N.json.
"""

from __future__ import annotations

import copy
import json
import os
import sys

import torch
import torch.distributed as dist
from accelerate import FullyShardedDataParallelPlugin
from accelerate.utils.fsdp_utils import fsdp2_prepare_auto_wrap_policy, get_module_children_bottom_up
from torch.distributed.fsdp import FSDPModule, fully_shard
from torch.distributed.tensor import DTensor
from transformers import LlamaForCausalLM

from lst_speech.modeling_lst import LSTConfig, LSTForCausalLM
from lst_speech.tokenization import SpeechUnitTextTokenizer

STEPS = 3


def train(model, ids, steps=STEPS) -> list[float]:
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = model(ids, labels=ids, use_cache=False).loss
        loss.backward()
        optimizer.step()
        losses.append(loss.detach())
    return losses


def shard(model, mesh) -> list[str]:
    """FSDP2 as Accelerate applies it; returns the names of the modules that became their own FSDP unit."""
    policy = fsdp2_prepare_auto_wrap_policy(FullyShardedDataParallelPlugin(fsdp_version=2, auto_wrap_policy="transformer_based_wrap"), model)
    units = []
    names = {module: name for name, module in model.named_modules()}
    for module in get_module_children_bottom_up(model)[:-1]:
        if policy(module) and not isinstance(module, FSDPModule):
            fully_shard(module, mesh=mesh)
            units.append(names[module])
    fully_shard(model, mesh=mesh)
    return units


def main() -> None:
    tokenizer_dir, output_dir = sys.argv[1], sys.argv[2]
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    mesh = torch.distributed.device_mesh.init_device_mesh("cpu", (world,))
    tokenizer = SpeechUnitTextTokenizer.from_pretrained(tokenizer_dir)
    config = LSTConfig.from_tokenizer(tokenizer, preset="tiny")
    generator = torch.Generator().manual_seed(1)
    speech_start, speech_end = config.speech_token_range
    ids = torch.randint(speech_start, speech_end, (2 * world, 40), generator=generator)
    ids[:, ::7] = torch.randint(4, config.text_token_range[1], ids[:, ::7].shape, generator=generator)  # text between
    result = {}
    for name, build in (("lst", lambda: LSTForCausalLM(config)),
                        ("llama", lambda: LlamaForCausalLM(config.global_llama_config()))):
        torch.manual_seed(0)
        model = build()
        reference = copy.deepcopy(model)
        units = shard(model, mesh)
        losses = train(model, ids[2 * rank : 2 * rank + 2])
        for loss in losses:  # the mean over the global batch (equal token counts per rank)
            dist.all_reduce(loss, op=dist.ReduceOp.AVG)
        result[name] = {
            "units": units,
            "no_split_modules": list(model._no_split_modules or []),
            "unsharded_parameters": [n for n, p in model.named_parameters() if not isinstance(p, DTensor)],
            "losses": [float(loss) for loss in losses],
            "single_process_losses": [float(loss) for loss in train(reference, ids)] if rank == 0 else None,
        }
    with open(os.path.join(output_dir, f"rank-{rank}.json"), "w", encoding="utf-8") as handle:
        json.dump(result, handle)
    dist.barrier()  # tear down together, once every rank has written its results
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
    # Skip interpreter finalization: torch's gloo threads can still hold tensors there, and about one run in 30
    # (more under load) then aborted after main() had returned ("terminate called without an active exception",
    # no Python frame; the failure pytorch/pytorch#179291 describes). Everything this rank owes is written.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
