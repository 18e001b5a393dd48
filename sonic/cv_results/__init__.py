"""Cross-validation results as committed files, and the ESC-50 page generated from them.

``python -m sonic.cv_results collect`` reads the ``cv_*`` stages' outputs (``data/cv/<fold>/``)
and writes, under ``--out``: ``results.json`` (per fold, mean ± sd (ddof 1), the mean of the
folds no study choice looked at, per class, compute per clip and time per fold, with the
machine, date and command), ``per_class.csv`` and ``confusion_<model>.png`` (one confusion over
all folds) — from this workspace's ``data/cv``, or with ``--exp NAME[:MODEL]`` (once per
experiment: a ResNet run and a CNN run on other features, say) from each experiment's folds
read through DVC, joined in one result. ``study`` records one development-fold experiment in
``study.json``, with the params that shape a training (so the page shows, beside the change
as written, every value that differs from the row's baseline). ``ensemble`` scores the average
of finished cross-validation experiments (the same recipe trained with other seeds, on other
features, or another model: ``--exp NAME:cnn``) on every fold, their checkpoints read through
DVC at each experiment's revision — no retraining — into ``ensembles.json``. ``teachers``
copies such experiments' fold checkpoints to ``data/teachers/<fold>/``, where stage
``cv_distill`` trains a student on them (``cv.students``). ``page`` writes
the Markdown page, the accuracy-against-compute plot and the learning curves (each fold's
training loss per epoch, which ``collect`` keeps) from those files only, so the page can be
regenerated (and checked) anywhere::

    python -m sonic.cv_results collect --cv data/cv --dev-fold 1 --out metrics/esc50_cv \\
        --command "dvc exp run -n esc50_cv ..."
    python -m sonic.cv_results study --name dev_bc --cv data/cv --fold 1 \\
        --change "between-class mixing" --out metrics/esc50_cv
    python -m sonic.cv_results ensemble --name esc50_cv_seeds --exp esc50_cv --exp esc50_cv_s1 \\
        --dev-fold 1 --out metrics/esc50_cv
    python -m sonic.cv_results page --results metrics/esc50_cv --doc docs/esc50.md \\
        --plot plots/esc50_accuracy_vs_compute.png --curves plots/esc50_learning_curves.png

One module per step, none of which imports torch or DVC until it needs them: ``fetch``
(reading experiments through DVC), ``collect``, ``ensemble``, ``study``, ``plots``, ``page``
(and ``text``, how it writes figures), ``cli`` (the command line).
"""
