"""The pure core: values and conversions, no network, no threads, no presentation.

``resource`` (ApiResource, URL paths), ``params`` and ``request`` (options and calls as
values), ``model`` (the base of every model) over ``lazy`` (lazy, lossless field access),
``fieldtypes``, ``time``, ``location`` and ``converter`` (cattrs); ``objectlist``,
``dynamic``, ``events``, ``quantity``, ``json``. ``convert`` is the one import for
decoding and encoding. ``forkgate`` holds a fork back while another thread does what a
child could not finish (TLS handshakes, imports, class builds).
"""
