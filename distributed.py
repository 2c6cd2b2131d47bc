"""Training on several processes with PyTorch's DistributedDataParallel (``torchrun``).

    torchrun --nproc_per_node 4 train.py ...                      # one machine, 4 GPUs (or CPU processes)
    torchrun --nnodes 2 --node_rank R --master_addr HOST --master_port 29500 \\
             --nproc_per_node 4 train.py ...                      # two machines, on each

torchrun sets RANK, LOCAL_RANK and WORLD_SIZE; without them training runs in one process as
usual. Every process trains on its own shard of each epoch (DistributedSampler) with the same
batch size, so the effective batch is ``batch_size x WORLD_SIZE``; the learning rate is used
as given (scale ``--lr`` yourself if you want the linear-scaling rule). Only rank 0 writes
logs and checkpoints; ``--resume`` loads the same last.pt in every process.
"""
import os

import torch
import torch.distributed as dist


def world_size():
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank():
    return int(os.environ.get("RANK", "0"))


def is_main():
    return rank() == 0


def setup(device_name):
    """Join the process group when launched by torchrun; returns this process's device."""
    if world_size() == 1:
        return None
    if not dist.is_initialized():
        use_cuda = device_name != "cpu" and torch.cuda.is_available()
        dist.init_process_group("nccl" if use_cuda else "gloo")
    if device_name != "cpu" and torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    return torch.device("cpu")


def wrap(model, device):
    """The model in DistributedDataParallel when several processes train it."""
    if world_size() == 1:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)


def unwrap(model):
    return getattr(model, "module", model)


def sync_buffers(model):
    """Give every process rank 0's BatchNorm statistics. DDP keeps the weights in step but
    each process's running statistics follow its own last batches; rank 0's are saved."""
    if world_size() > 1:
        for buffer in unwrap(model).buffers():
            dist.broadcast(buffer, src=0)


def sampler(dataset, seed):
    """A DistributedSampler giving each process its shard (None in one process)."""
    if world_size() == 1:
        return None
    return torch.utils.data.distributed.DistributedSampler(dataset, shuffle=True, seed=seed, drop_last=True)


def barrier():
    if world_size() > 1:
        dist.barrier()


def cleanup():
    if world_size() > 1 and dist.is_initialized():
        dist.destroy_process_group()
