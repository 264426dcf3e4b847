"""Annotation loop: push samples to annotators, pull preferences back.

- :mod:`annotation.pairs`: pairs files (``{id?, prompt, audio_a, audio_b, metadata?}``), checks,
  content-hash keys;
- :mod:`annotation.outbox`: the local journal that makes a push loss-free and idempotent;
- :mod:`annotation.aggregate`: votes → majority, margin, Cohen's and Fleiss' kappa (pure);
- :mod:`annotation.backend`: the :class:`~annotation.backend.AnnotationBackend` protocol;
- :mod:`annotation.argilla`: the Argilla 2.8 backend (settings, records, connection);
- :mod:`annotation.simulate`: scripted annotators answering through the REST API;
- :mod:`annotation.stage`: the ``annotate`` stage kind;
- :mod:`annotation.speech_pairs`: eSpeak NG speech pairs for demos, tests and benchmarks;
- :mod:`annotation.server`: the embedded Argilla server.
"""
