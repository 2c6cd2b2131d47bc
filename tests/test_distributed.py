"""DistributedDataParallel on the CPU (gloo): two processes train in step, rank 0 writes."""
import os
import socket

import torch
import torch.multiprocessing as mp

from checkpoint import load_checkpoint, load_model


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank(rank, world, port, data_dir, out_dir, epochs, resume):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(world), OMP_NUM_THREADS="1")
    torch.set_num_threads(1)
    import train
    seen = {}
    one_epoch = train.train_one_epoch

    def keep_model(model, *args, **kwargs):       # the DDP-wrapped model this process trains
        seen["model"] = model
        return one_epoch(model, *args, **kwargs)
    train.train_one_epoch = keep_model
    cfg = train.TrainConfig(data_dir=data_dir, out_dir=out_dir, input_size=64, subset=96, val_fraction=0.2,
                            epochs=epochs, batch_size=8, num_workers=0, framing="keypoints", resume=resume,
                            model_kwargs={"width": [8, 16, 24, 32], "neck": 16}, device="cpu")
    train.train(cfg)
    torch.save(seen["model"].module.state_dict(), os.path.join(out_dir, f"rank{rank}.pt"))
    import distributed
    distributed.cleanup()


def _launch(data_dir, out_dir, epochs, resume=False):
    mp.spawn(_rank, args=(2, _free_port(), data_dir, str(out_dir), epochs, resume), nprocs=2, join=True)


def test_two_processes_end_with_identical_weights_and_a_loadable_checkpoint(data_dir, tmp_path):
    _launch(data_dir, tmp_path, epochs=1)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]
    assert all(torch.equal(ranks[0][k], ranks[1][k]) for k in ranks[0])
    model, config = load_model(str(tmp_path / "last.pt"))
    assert all(torch.equal(model.state_dict()[k], ranks[0][k]) for k in ranks[0])
    assert config["model"]["arch"] == "heatmapnet"
    first = load_checkpoint(str(tmp_path / "last.pt"))
    # each process trained on its own half of the 77 training faces: 4 steps of 8, not 9
    assert first["scheduler"]["last_epoch"] == 4
    _launch(data_dir, tmp_path, epochs=2, resume=True)
    resumed = load_checkpoint(str(tmp_path / "last.pt"))
    assert [h["epoch"] for h in resumed["history"]] == [1, 2]
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]
    assert all(torch.equal(ranks[0][k], ranks[1][k]) for k in ranks[0])
    assert not all(torch.equal(ranks[0][k], first["model"][k]) for k in ranks[0])
