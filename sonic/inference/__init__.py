"""Using trained models: windows of any audio file (``windows``), the :class:`Predictor` behind
``sonic predict`` and ``sonic serve`` (``predictor``), output formats (``output``), feature maps
(``inspect``), cGAN sampling (``generate``) and ONNX export (``export``)."""
