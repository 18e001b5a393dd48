"""Benchmark harness: how fast Sonic extracts, trains and runs its pipeline on this machine.

Usage::

    python -m sonic.bench --out results/bench.json                    # generated demo clips
    python -m sonic.bench --out results/bench_esc50.json --data /path/to/ESC-50 --layout esc50
    python -m sonic.bench --out b.json --skip-dvc --limit 200 --steps 5 --params my_params.yaml

``--params`` must be a whole params file (the DVC copy runs the pipeline with it); ``--threads N``
sets OMP/MKL/OpenBLAS threads for every part and DVC stage, useful on a CPU shared with other
work, where the default thread pools spin-wait on descheduled threads.

Each measured part runs in its own child process (``--part``), so its peak RSS is its own:

``extract``
    Sonic's :func:`sonic.features.extract.extract` over the clips against a plain per-file
    librosa loop (``librosa.load`` + ``melspectrogram`` + ``power_to_db(ref=np.max)``), both on
    the same files and cores. The features config is ``params.yaml``'s with ``trim: false`` and
    ``duration`` set to the longest clip (5.0 s on ESC-50), so no clip is cropped and both paths
    frame the same audio. Each path runs ``--repeats`` times (3), alternating, each run in a
    fresh process after an ``os.sync()`` (so writing back one run's 1.1 GB of arrays never lands
    in the next run's time); the median run counts, every run's time is kept. Sonic zero-pads
    shorter clips to that duration; their frames past the librosa output's own length are left
    out of the comparison, every other frame is compared.
``train.<model>``
    A full training step (forward, loss, backward, gradient clipping, AdamW step) at the
    model's default size on a fixed batch shaped like the features, fp32 contiguous against
    the fast path of :mod:`sonic.training.loop` (bf16 autocast where :func:`sonic.precision.use_bf16` says so, plus
    channels_last where ``channels_last_safe`` allows); samples/s from the median step time.
    Both start from the same weights. The honesty checks: logits of both paths on the batch
    (eval mode) and the loss after the same steps on the same batch.
``dvc``
    Wall time of ``dvc repro`` from nothing, a no-op ``dvc repro`` and
    ``dvc exp run -S train.lr=<lr / 2>`` in a temporary git copy of the repository, and which
    stages the experiment ran. Always the default pipeline on the generated demo set (with
    ``--params``' values): ``--data`` applies to the parts above, never to the DVC copy.

JSON written by ``--out`` (atomically)::

    machine:  cpu, cores, cores_usable, torch, torch_threads, device, device_name, bf16_native,
              python, platform, librosa, dvc, date
    data:     root, layout, generated_demo, clips, n_classes, limit
    features: the FeatureConfig used (trim false, duration = longest clip) and a note
    extract:  clips, sonic_s, sonic_clips_per_s, sonic_runs_s, librosa_s, librosa_clips_per_s,
              librosa_runs_s, speedup (sonic / librosa, medians), max_abs_db_diff,
              mean_abs_db_diff, worst_clip, clips_compared, clips_frame_mismatch, device,
              workers, note
    train:    {cnn, resnet}: input_shape, n_classes, parameters, warmup, steps,
              fp32_samples_per_s, fast_samples_per_s, speedup (fast / fp32), fast_precision,
              fast_channels_last, logits_max_abs_diff, logits_max_abs, argmax_agreement,
              loss_initial, loss_fp32, loss_fast, cuda_max_allocated_mib_{fp32,fast} on CUDA
    memory:   {extract_sonic, extract_librosa, train_cnn, train_resnet}: peak_rss_mib (VmHWM of
              the part's own process); extract_sonic also with_workers_peak_rss_mib (largest
              sampled sum of it and its decoding workers); train_* on CUDA
              cuda_max_allocated_mib_{fp32,fast}
    dvc:      {skipped: true}, {error: what failed} or repro_s, repro_ran, noop_s, noop_ran,
              exp_run_s, exp_set, exp_ran, exp_skipped_upstream (true when none of prepare,
              extract_mels, split, augment ran)
"""
