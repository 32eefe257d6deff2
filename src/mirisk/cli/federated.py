"""Federated commands: reconstruct a client's images from the update a server receives."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from mirisk.artifacts import prepare_output_dir, write_bytes, write_json, write_npz
from mirisk.cli.common import attack_app, console, friendly_errors, progress_bar, seed_option
from mirisk.data.faces import BUNDLED
from mirisk.figures import reconstruction_grid
from mirisk.attacks.gradient import ATTACKS
from mirisk.fl.record import ServerRecord
from mirisk.fl.simulation import ClientSettings, UpdateDefence
from mirisk.pipelines.federated import (
    FederatedSetting, attack_captured_record, load_client_images, run_gradient_attack,
)


class Protocol(str, Enum):
    fedsgd = "fedsgd"
    fedavg = "fedavg"


class ClientModel(str, Enum):
    lenet = "lenet"
    cnn = "cnn"
    mlp = "mlp"
    softmax = "softmax"


GradientAttack = Enum("GradientAttack", {name.replace("-", "_"): name for name in ATTACKS}, type=str)


@attack_app.command("gradients")
@friendly_errors
def attack_gradients(
    out: Annotated[Path, typer.Option(help="New folder for result.json and reconstructions.npz.")],
    data: Annotated[str, typer.Option(help=f"Client images: a face folder, {BUNDLED} or bundled:ixi_t1.")] = BUNDLED,
    record: Annotated[Path | None, typer.Option(help="Attack this captured server record (record.safetensors + "
                                                     "record.json) instead of simulating a round.")] = None,
    protocol: Annotated[Protocol, typer.Option(help="FedSGD (one gradient) or FedAvg (local SGD steps).")] = Protocol.fedsgd,
    batch: Annotated[int, typer.Option(help="Images per client in the round.")] = 1,
    clients: Annotated[int, typer.Option(help="Clients whose updates the server sees only as a mean "
                                              "(secure aggregation); 1: the client's own update.")] = 1,
    local_steps: Annotated[int, typer.Option(help="FedAvg: local SGD steps.")] = 5,
    local_lr: Annotated[float, typer.Option(help="FedAvg: local learning rate.")] = 0.1,
    local_batch_size: Annotated[int | None, typer.Option(help="FedAvg: local mini-batch (default: all images).")] = None,
    dp_noise: Annotated[float, typer.Option(help="Gaussian noise multiplier sigma on each update (needs --clip).")] = 0.0,
    clip: Annotated[float | None, typer.Option(help="Clip each client's update to this L2 norm.")] = None,
    sparsify: Annotated[float | None, typer.Option(help="Keep only this fraction of the update's largest entries.")] = None,
    quantise: Annotated[int | None, typer.Option(help="Round the update to this many bits per tensor.")] = None,
    attack: Annotated[GradientAttack, typer.Option(help="dlg, idlg or inverting-gradients.")] = GradientAttack.inverting_gradients,
    model: Annotated[ClientModel, typer.Option(help="The shared model's family (fresh weights).")] = ClientModel.lenet,
    iterations: Annotated[int, typer.Option(help="Optimisation steps.")] = 1000,
    restarts: Annotated[int, typer.Option(help="Random restarts, optimised together; the best is kept.")] = 2,
    downscale: Annotated[int, typer.Option(help="Average-pool the images by this factor first.")] = 2,
    seed: Annotated[int, seed_option("Seed of the client's images, the weights and the attack.")] = 0,
    save_record: Annotated[bool, typer.Option(help="Also write the simulated server record to OUT/record.")] = False,
    force: Annotated[bool, typer.Option(help="Overwrite a non-empty output folder.")] = False,
) -> None:
    """Reconstruct a client's training images from one round's update (DLG, iDLG, Inverting Gradients)."""
    if record is not None:
        captured = ServerRecord.load(record)
        out_dir = prepare_output_dir(out, force=force)
        with progress_bar(f"{attack.value} on the captured update", iterations) as update:
            result = attack_captured_record(captured, attack.value, iterations, restarts, seed, progress=update)
        write_json(out_dir / "result.json", result["payload"])
        write_npz(out_dir / "reconstructions.npz", reconstructions=result["reconstructions"], labels=result["labels"])
        console.print(f"recovered labels {result['labels'].tolist()}; wrote {out_dir}/result.json and "
                      "reconstructions.npz (owner-only)")
        return
    setting = FederatedSetting(
        architecture=model.value, batch=batch, n_clients=clients,
        client=ClientSettings(protocol.value, local_steps, local_lr, local_batch_size),
        defence=UpdateDefence(clip=clip, noise=dp_noise, sparsify=sparsify, quantise=quantise),
        attack=attack.value, iterations=iterations, restarts=restarts, downscale=downscale, seed=seed,
    )
    dataset = load_client_images(data)
    out_dir = prepare_output_dir(out, force=force)
    with progress_bar(f"{attack.value} on a {protocol.value} round", iterations) as update:
        report, server_record = run_gradient_attack(dataset, setting, progress=update)
    write_json(out_dir / "result.json", report.payload)
    write_npz(out_dir / "reconstructions.npz", reconstructions=report.reconstructions, originals=report.originals,
              labels=report.labels)
    per_image = report.payload["metrics"]["per_image"]
    titles = [f"{dataset.class_names[label]} ({value:.1f} dB)" for label, value in zip(report.labels, per_image["psnr"],
                                                                                     strict=True)]
    write_bytes(out_dir / "reconstructions.png", reconstruction_grid(
        report.originals, report.reconstructions, titles,
        heading=f"{attack.value}, {protocol.value}, batch {batch}: top: the client's image; bottom: reconstruction"))
    if save_record:
        server_record.save(out_dir / "record", force=True)
    console.print(gradient_table(report.payload))
    console.print(f"wrote {out_dir}/result.json, reconstructions.npz and .png (owner-only)")


def gradient_table(payload: dict) -> Table:
    metrics = payload["metrics"]
    table = Table(title=f"{payload['attack']} on a {payload['round']['protocol']} round of "
                        f"{payload['round']['n_images']} image(s)")
    for column in ("PSNR (dB)", "SSIM", "labels", "re-ID top-1", "seconds"):
        table.add_column(column, justify="right")
    table.add_row(f"{metrics['psnr_mean']:.1f}", f"{metrics['ssim_mean']:.2f}", f"{metrics['label_accuracy']:.0%}",
                  f"{metrics['reid_top1']:.0%} (chance {metrics['reid_chance']:.1%})", f"{payload['seconds']:.0f}")
    return table
