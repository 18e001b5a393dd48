"""Conditional generation of log-mel spectrograms, their inversion to audio, and its quality.

- ``gan``: :class:`Generator` (resize + conv upsampling, per-class batch norm) and
  :class:`Discriminator` (projection head, optional AC-GAN class head).
- ``state``: :class:`GANState` (both networks and optimizers, the weights' moving average, the
  noise RNG), its checkpoint and restore, :func:`save_generator` and :func:`load_generator`,
  :func:`sampling_generator` (standing batch-norm statistics), :func:`fixed_grid` and
  :func:`generate` for samples.
- ``trainer``: :func:`train_step` ((1) discriminator, (2) generator, then the moving average)
  and the epoch loop :func:`train_cgan`.
- ``mel_to_wave``: :func:`mel_db_to_wave` (linear magnitudes, then (fast) Griffin-Lim).
- ``inverter_net``: :class:`MelInverter`, the small mel → linear-magnitude network, its
  training and its comparison with the least-squares inverse.
- ``quality``: inception score, Fréchet distance beside its real floor, copies, bootstrap
  intervals; ``cas``: the classification accuracy score.
- ``samples``: sampling per class, inversion to WAVs, and the report of every quality figure.
- ``spectrogram_plots``: picture grids of spectrograms (pulls in matplotlib).
- the stages' work, one module each: ``cgan_run`` (``train_cgan``: training, progress pictures
  and WAVs, the checkpoint), ``inverter_run`` (``train_inverter``), ``synthesize_run``
  (``synthesize``).

The package imports nothing itself, so a stage that uses one module depends on that module
alone (``dvc.yaml`` lists exactly those).
"""
