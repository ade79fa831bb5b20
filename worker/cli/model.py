"""Commands of the model: ``train`` and ``evaluate``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from worker.cli.common import (
    Format,
    ReportFormat,
    commands,
    emit,
    example,
    fail,
    format_option,
    out,
    progress_bar,
    settings_or_exit,
)


@commands.command(
    epilog=example("newsclass train --data ../shared/data/wikinews/train.jsonl --out models/mine")
)
def train(
    data: Annotated[
        Path, typer.Option(help="Labelled JSONL or CSV.", envvar="NEWSCLASS_TRAIN_DATA")
    ],
    out_dir: Annotated[
        Path, typer.Option("--out", help="Folder for model.skops and its card.")
    ] = Path("model"),
    dev: Annotated[
        Path | None, typer.Option(help="Labelled data to report on (never trained on).")
    ] = None,
    supplement: Annotated[
        list[Path] | None,
        typer.Option(
            help="Labelled JSONL or CSV learned from in every CV training fold but never scored "
            "(repeatable)."
        ),
    ] = None,
    unlabeled: Annotated[
        Path | None, typer.Option(help="Unlabelled JSONL or CSV to learn word vectors from.")
    ] = None,
    annotations: Annotated[
        list[Path] | None,
        typer.Option(
            help="JSONL of id + labels for articles of --unlabeled: learned from in every CV "
            "training fold but never scored (repeatable)."
        ),
    ] = None,
    bbc: Annotated[
        Path | None,
        typer.Option(help="BBC JSONL for the no-label and politics checks (never trained on)."),
    ] = None,
    seed: Annotated[int, typer.Option(min=0, max=2**32 - 1, help="Random seed.")] = 0,
) -> None:
    """Train a topic model and save it with skops and a model card (the same card as
    `make train`: library versions, data hashes, CV, dev and BBC results, speed)."""
    from classifiers.train import train_and_save

    with progress_bar() as bar:
        task = bar.add_task("training", total=None)

        def progress(step: int, total: int, description: str) -> None:
            bar.update(task, completed=step, total=total, description=description)

        try:
            path, card = train_and_save(
                data=data,
                out=out_dir,
                dev=dev,
                bbc=bbc,
                unlabeled=unlabeled,
                supplement=supplement or [],
                annotations=annotations or [],
                seed=seed,
                progress=progress,
            )
        except (OSError, ValueError) as exc:
            raise fail(str(exc)) from None
    version = card["version"]
    out.print(f"saved {path} (version {version}); use it with NEWSCLASS_MODEL_PATH={path}")


@commands.command(
    epilog=example(
        "newsclass evaluate --data ../shared/data/wikinews/dev.jsonl --format json\n"
        "  newsclass evaluate --data ../shared/data/modern/dev.jsonl --views full,title,lead"
    )
)
def evaluate(
    data: Annotated[
        Path, typer.Option(help="Labelled JSONL or CSV.", envvar="NEWSCLASS_EVAL_DATA")
    ],
    views: Annotated[
        str,
        typer.Option(
            help="Comma-separated views to score: full (the article), title (the headline "
            "alone), lead (the headline and its first sentence). Titles marked title_derived "
            "are left out of the short views."
        ),
    ] = "full",
    fmt: Annotated[ReportFormat, format_option()] = Format.table,
) -> None:
    """Precision, recall and F1 per label, micro and macro F1, of the configured model."""
    from classifiers import load_model, read_labelled
    from classifiers.evaluate import VIEWS, evaluate_views

    chosen = [view.strip() for view in views.split(",") if view.strip()]
    unknown = sorted(set(chosen) - set(VIEWS))
    if unknown or not chosen:
        raise fail(f"--views: one or more of {', '.join(VIEWS)}, got {views!r}", code=2)
    settings = settings_or_exit()
    try:
        records = read_labelled(data)
    except (OSError, ValueError) as exc:
        raise fail(str(exc)) from None
    model = load_model(settings.model_path)
    reports = evaluate_views(model, records, chosen)
    if fmt == Format.json:
        # One view (the default, full): the report itself, as before; several: one per view.
        body = reports[chosen[0]] if len(chosen) == 1 else {"views": reports}
        sys.stdout.write(json.dumps({**body, "model_version": model.version}, indent=2) + "\n")
        return
    for view, report in reports.items():
        rows = [{"label": k, **v} for k, v in report["per_label"].items()]
        title = f"{model.version}: n={report['n']}" + ("" if view == "full" else f", {view}")
        emit(rows, "table", ["label", "precision", "recall", "f1", "support"], title=title)
        out.print(f"micro F1 {report['micro_f1']:.3f}  macro F1 {report['macro_f1']:.3f}")
