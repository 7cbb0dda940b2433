"""C7: can a dense net keep a conv net's solution (eFCN, d'Ascoli et al. 2019)?

    cvd sweep --config experiments/embedding.py:quick --workdir runs/embedding

A conv net trained for t epochs, embedded exactly into the dense family
(same function at the switch), then trained on as dense for the remaining
epochs; against dense and conv trained from scratch for all epochs. quick:
MNIST-1D, 8 epochs, t in {2, 4, 6}, 5 runs. paper: t in {3, 10, 20, 30} of 40
epochs. full: t in {1, 2, 5, 10, 25, 50, 100} of 150 epochs. paper and full repeat every
run with plain SGD (d'Ascoli et al.'s optimizer; 12 runs in paper). Expected: embedded nets keep most of
the conv's advantage and beat dense from scratch.
"""

from experiments.common import check_variant, datasets, lattice_config, within_budget

SGD_RATES = (0.3, 0.1, 0.03, 0.01)  # plain SGD wants larger rates than Adam; the report flags an edge pick


def get_config(variant: str = "quick"):
    return lattice_config(variant)


EPOCHS = {"quick": 8, "paper": 40, "full": 150, "gpu-smoke": 2}


def _sweep(variant: str) -> list[dict]:
    times = {"quick": (2, 4, 6), "paper": (3, 10, 20, 30), "full": (1, 2, 5, 10, 25, 50, 100), "gpu-smoke": (1,)}[
        check_variant(variant)
    ]
    runs = []
    # The switch times are epochs of a fixed schedule: every run trains all its epochs at a
    # constant rate (no early stop or rate halving before or after the switch), as the study was designed.
    fixed = {
        "train.epochs": EPOCHS[check_variant(variant)],
        "train.patience": 0,
        "train.halve_rates_at": 0.0,
        "optimizer.schedule": "constant",
    }
    for bundle in ({**b, **fixed} for b in datasets(variant, images=False)):
        runs.append({**bundle, "model.family": "conv", "train.embed_at_epoch": 0})
        runs.append({**bundle, "model.family": "dense", "train.embed_at_epoch": 0})
        runs += [
            {
                **bundle,
                "model.family": "conv",
                "train.embed_at_epoch": t,
                "train.embed_into": "dense",
                "probes.track": ("receptive_field",),  # weight mass leaving the conv's receptive fields
            }
            for t in times
        ]
    if check_variant(variant) in ("paper", "full"):
        # d'Ascoli et al. 2019 trained with SGD: the same runs with plain SGD, whose switch is exact in the
        # optimizer too (no state to restart). A separate arm: C7 is judged per optimizer.
        sgd = {"optimizer.name": "sgd", "optimizer.momentum": 0.0, "optimizer.learning_rates": SGD_RATES}
        runs += [{**run, **sgd} for run in runs]
    return runs


def get_sweep(variant: str = "quick"):
    return within_budget(variant, _sweep(variant), get_config(variant))
