"""``sonic serve``: the HTTP API (``app``), its upload limit (``limits``) and the page (``static/``)."""
